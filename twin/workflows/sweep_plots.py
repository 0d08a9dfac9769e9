"""Plots of a parameter sweep's table (:func:`plot_sweep`): acquisition time and resolution
against each swept field. :mod:`twin.workflows.sweep` re-exports :func:`plot_sweep`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from twin.scenario import Scenario
from twin.workflows import forecast as _forecast


def plot_sweep(table: pd.DataFrame, s: Scenario, stem: Path) -> list[Path]:
    """PNG plots of acquisition time and resolution against each swept field.

    For each swept field, one line per combination of the other fields (up to 12; beyond that
    the median over the others is drawn). The scenario's own point (its values without the
    sweep) is marked with a red star; where the table has ``resolution_simulated_m`` (a
    simulated sweep), the simulated resolutions are drawn beside the closed-form ones.

    Parameters
    ----------
    table : pandas.DataFrame
        The sweep's table (:func:`run_sweep`): one row per point, a column per swept field.
    s : Scenario
        The swept scenario (its ``[sweep]`` table names the fields).
    stem : Path
        The plots are ``{stem}_total_time.png`` and ``{stem}_resolution_forecast.png``.

    Returns
    -------
    list of Path
        The files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from twin.core.formatting import display_scale

    keys = list(s.sweep)
    own, own_x = _own_point(s, keys)
    written = []
    t_scale, t_unit = display_scale("s", float(np.nanmedian(table["total_time_s"])))
    for y, label, scale in (("total_time_s", f"total acquisition time [{t_unit}]", t_scale),
                            ("resolution_forecast_m", "resolution [nm]", 1e9)):
        fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.6), squeeze=False)
        for ax, key in zip(axes[0], keys):
            _plot_field(ax, table, keys, key, (y, label, scale), own, own_x)
        fig.suptitle(s.name)
        fig.tight_layout()
        out = Path(f"{stem}_{y.removesuffix('_s').removesuffix('_m')}.png")
        fig.savefig(out, dpi=110)
        plt.close(fig)
        written.append(out)
    return written


def _own_point(s: Scenario, keys: list[str]) -> tuple[dict, dict]:
    """The scenario's own forecast (its values without the sweep) and its value of each swept
    field (``keys``, dotted paths): where :func:`plot_sweep` puts the red star."""
    own_s = s.with_values({})
    own = _forecast.forecast(own_s).values
    own_x = {}
    for key in keys:
        node = own_s
        for part in key.split("."):
            node = getattr(node, part)
        own_x[key] = node
    return own, own_x


def _plot_field(ax, table: pd.DataFrame, keys: list[str], key: str,
                quantity: tuple[str, str, float], own: dict, own_x: dict) -> None:
    """One panel of :func:`plot_sweep`: a quantity against the swept field ``key``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    table : pandas.DataFrame
        The sweep's table.
    keys : list of str
        All swept fields.
    key : str
        The field on the x axis.
    quantity : (str, str, float)
        The column drawn, the y axis's label, and the factor from its unit to the label's.
    own, own_x : dict
        The scenario's own point (:func:`_own_point`).
    """
    y, label, scale = quantity
    others = [k for k in keys if k != key]
    numeric = pd.api.types.is_numeric_dtype(table[key])
    n_groups = table[others].drop_duplicates().shape[0] if others else 1
    if n_groups <= 12:
        _plot_groups(ax, table, key, others, y, scale, numeric)
    else:
        med = table.groupby(key)[y].median() * scale
        ax.plot(med.index, med.values, marker="o", label="median over other fields")
    if own.get(y) is not None:
        x0 = own_x[key] if numeric else str(own_x[key])
        ax.plot([x0], [own[y] * scale], marker="*", ms=16, color="red", ls="none",
                zorder=5, label="this scenario")
    ax.legend(fontsize=7)
    if numeric and (table[key] > 0).all() and table[key].max() / table[key].min() > 20:
        ax.set_xscale("log")
    if (table[y] > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel(key)
    ax.set_ylabel(label)
    ax.grid(True, which="both", alpha=0.3)


def _plot_groups(ax, table: pd.DataFrame, key: str, others: list[str], y: str, scale: float,
                 numeric: bool) -> None:
    """One line of column ``y`` (× ``scale``) against ``key`` per combination of the
    ``others`` fields, with the simulated resolutions dashed beside the forecast's where the
    table has them."""
    groups = table.groupby(others, sort=True) if others else [((), table)]
    for name, g in groups:
        g = g.sort_values(key)
        lab = ", ".join(f"{k.split('.')[-1]}={v:g}" if isinstance(v, float)
                        else f"{k.split('.')[-1]}={v}"
                        for k, v in zip(others, np.atleast_1d(name)))
        line, = ax.plot(g[key].astype(str) if not numeric else g[key],
                        g[y] * scale, marker="o", label=lab or "forecast")
        if y == "resolution_forecast_m" and "resolution_simulated_m" in g:
            ax.plot(g[key].astype(str) if not numeric else g[key],
                    g["resolution_simulated_m"] * scale, marker="s", ls="--",
                    color=line.get_color(), alpha=0.7,
                    label=f"{lab}, simulated" if lab else "simulated")
