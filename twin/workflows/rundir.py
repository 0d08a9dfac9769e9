"""The run directory of ``twin run``: one object that names every file a stage writes.

The pipeline's stages write through it, and the figures and the report read through it, so the
layout is known in one place::

    DIR/scenario.json  forecast.json  summary.json
    DIR/sweep/sweep.csv
    DIR/simulate/data.cxi
    DIR/reconstruct/reconstruction.h5  comparison.npz
    DIR/tomography/chain.npz
    DIR/figures/*.png
    DIR/report/            (the Jupyter Book sources and _build/html)
    DIR/<stage>/stage.json (the stage's cache key and its results)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    """Paths of one ``twin run`` output directory."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    def stage_dir(self, name: str) -> Path:
        """The folder ``DIR/<name>`` of a stage (not created here).

        Parameters
        ----------
        name : str
            The stage's name, e.g. ``"simulate"``.
        """
        return self.root / name

    def stage_info(self, name: str) -> dict:
        """The ``stage.json`` of stage ``name``, parsed ({} when the file does not exist).

        Parameters
        ----------
        name : str
            The stage's name, e.g. ``"reconstruct"``.
        """
        p = self.stage_dir(name) / "stage.json"
        return json.loads(p.read_text()) if p.exists() else {}

    @property
    def scenario_json(self) -> Path:
        return self.root / "scenario.json"

    @property
    def forecast_json(self) -> Path:
        return self.root / "forecast.json"

    @property
    def summary_json(self) -> Path:
        return self.root / "summary.json"

    @property
    def sweep_csv(self) -> Path:
        return self.root / "sweep" / "sweep.csv"

    @property
    def data_cxi(self) -> Path:
        return self.root / "simulate" / "data.cxi"

    @property
    def reconstruction_h5(self) -> Path:
        return self.root / "reconstruct" / "reconstruction.h5"

    @property
    def comparison_npz(self) -> Path:
        return self.root / "reconstruct" / "comparison.npz"

    @property
    def chain_npz(self) -> Path:
        return self.root / "tomography" / "chain.npz"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def report(self) -> Path:
        return self.root / "report"

    def summary(self) -> dict:
        """``summary.json``, parsed (FileNotFoundError when it was not written)."""
        return json.loads(self.summary_json.read_text())

    def scenario_dict(self) -> dict:
        """``scenario.json``, parsed (FileNotFoundError when it was not written)."""
        return json.loads(self.scenario_json.read_text())
