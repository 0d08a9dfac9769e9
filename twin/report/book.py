"""The Jupyter Book report of a run (``twin report DIR``), built offline to static HTML.

:func:`build` writes the book's sources into ``DIR/report`` — the scenario's parameters with
units, the forecast, the sweep, the acquisition (probe, trajectory, frames), the
reconstruction against the ground truth with its FRC, the 3D chain with its FSC, and, for the
seed scenarios, twin's figures against the papers' — and runs Jupyter Book 1.x on them with
MathJax served from the book itself (sphinx-mathjax-offline), so the pages load nothing from
the internet.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

from twin.core.errors import TwinInputError
from twin.workflows.forecast import UNITS
from twin.core.formatting import format_value

CONFIG = """title: "{title}"
author: twin
copyright: ""
only_build_toc_files: true
execute:
  execute_notebooks: "off"
html:
  use_repository_button: false
  use_issues_button: false
  use_edit_page_button: false
  use_download_button: false
  use_fullscreen_button: false
  extra_footer: "Made by twin {version}"
sphinx:
  extra_extensions:
    - sphinx-mathjax-offline
  config:
    html_show_copyright: false
    html_last_updated_fmt: ""
    html_theme_options:
      use_download_button: false
      use_fullscreen_button: false
      use_repository_button: false
      navigation_with_keys: false
"""


def _fmt(key: str, v) -> str:
    return format_value(key, v)


def _table(rows, header) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def _params(scn: dict) -> str:
    parts = []
    for section in ("sample", "beam", "optics", "scan", "detector", "tomography",
                    "reconstruction", "resolution", "run"):
        rows = []
        for k, v in scn.get(section, {}).items():
            if isinstance(v, dict):
                for k2, v2 in v.items():
                    rows.append((f"{k}.{k2}", f"`{v2}`"))
            else:
                rows.append((k, f"`{v}`"))
        parts.append(f"### [{section}]\n\n" + _table(rows, ["field (unit in the name)", "value"]))
    return "\n".join(parts)


def paper_rows(name: str, values: dict) -> list[tuple]:
    table = tomllib.loads(resources.files("twin.data").joinpath("paper_figures.toml").read_text())
    rows = []
    for row in table.get(name, []):
        v = values.get(row["key"])
        ratio = f"{v / row['paper']:.2f}" if isinstance(v, (int, float)) and row["paper"] else "—"
        rows.append((row["key"], _fmt(row["key"], row["paper"]), _fmt(row["key"], v), ratio,
                     row["section"], row.get("note", "")))
    return rows


def write_sources(run_dir: Path) -> Path:
    summary = json.loads((run_dir / "summary.json").read_text())
    scn = json.loads((run_dir / "scenario.json").read_text())
    fc = summary["forecast"]
    src = run_dir / "report"
    if src.exists():
        shutil.rmtree(src)
    (src / "figures").mkdir(parents=True)
    for p in (run_dir / "figures").glob("*.png"):
        shutil.copy(p, src / "figures" / p.name)
    figs = {p.name for p in (src / "figures").glob("*.png")}

    def fig(name, caption):
        if name not in figs:
            return ""
        return f"```{{figure}} figures/{name}\n:width: 100%\n\n{caption}\n```\n"

    pages = {}
    pages["index"] = (
        f"# {scn['name']}\n\n{scn.get('description', '')}\n\n"
        "This report was made by `twin run`: a forecast of the acquisition from the scenario's "
        "physics, a simulation of what the detector records, the reconstruction of those "
        "frames, and its comparison with the ground truth the simulation kept.\n\n"
        "## Headline numbers\n\n"
        + _table([(k, _fmt(k, fc.get(k))) for k in (
            "total_time_s", "n_projections", "dose_gy", "data_volume_bytes", "pixel_size_m",
            "resolution_forecast_m", "saturated")], ["quantity", "forecast"])
        + "\n## Scenario parameters\n\n" + _params(scn))
    sweep = ""
    if "sweep" in summary:
        sweep = (f"\n## Sweep\n\n{summary['sweep']['points']} points evaluated on Dask "
                 "(`sweep/sweep.csv`).\n\n"
                 + fig("sweep_total_time.png", "Acquisition time against each swept field.")
                 + fig("sweep_resolution_forecast.png",
                       "Forecast resolution against each swept field."))
    pages["forecast"] = (
        "# Forecast\n\nEvery quantity is computed from the scenario's parameters (see the "
        "book's *Forecast model* chapter for the equations). The resolution model: "
        f"{fc.get('resolution_model')}; limited by {fc.get('resolution_limited_by')}.\n\n"
        "Dose $D = N E (\\mu_{en}/\\mu)\\langle 1 - e^{-\\mu L}\\rangle / m$ and data volume "
        "$V = N_{crop}^2 \\, b \\, N_{frames}$.\n\n"
        + _table([(k, _fmt(k, v), UNITS.get(k, "")) for k, v in fc.items()],
                 ["key", "value", "unit"]) + sweep)
    sim = summary.get("simulate", {})
    pages["acquisition"] = (
        "# Acquisition\n\n"
        f"{sim.get('frames', 0)} frames simulated: mean {sim.get('mean_counts_per_frame', 0):.4g}"
        f" counts per frame, peak {sim.get('peak_counts', 0):g} counts in one pixel, "
        f"{sim.get('saturated_frames', 0)} frames with a saturated pixel; position error after "
        f"capture and interpolation {sim.get('position_error_rms_m', 0) * 1e9:.3g} nm rms.\n\n"
        + fig("probe.png", "The probe at the sample: amplitude and phase of each mode.")
        + fig("trajectory.png", "True against captured/interpolated positions (PandA).")
        + fig("frames.png", "Example frames on a log scale and the peak count-rate map; cyan "
              "outlines pixels at the count-rate or counter limit."))
    rec = summary.get("reconstruct", {})
    if rec:
        pages["reconstruction"] = (
            "# Reconstruction\n\n"
            + _table([("PCC (phase)", f"{rec['pcc_phase']:.4f}"),
                      ("SSIM (phase)", f"{rec['ssim_phase']:.4f}"),
                      ("MS-SSIM (phase)", f"{rec['ms_ssim_phase']:.4f}"),
                      ("FRC half-bit resolution", _fmt('x_m', rec['frc_resolution_m'])),
                      ("FRC 1/7 resolution", _fmt('x_m', rec['frc_resolution_7_m'])),
                      ("phase rms error", f"{rec['phase_rms_error_rad']:.4f} rad"),
                      ("iterations", rec['iterations']),
                      ("speed", f"{rec['frame_iterations_per_s']:.0f} frame-iterations/s")],
                     ["metric", "value"])
            + "\n" + fig("reconstruction.png", "Ground truth, reconstruction (aligned: global "
                         "phase, phase ramp and sub-pixel shift removed) and their difference.")
            + fig("frc.png", "Fourier ring correlation of the reconstruction with the ground "
                  "truth, with the half-bit and 1/7 thresholds (van Heel & Schatz 2005)."))
    tom = summary.get("tomography")
    if tom:
        pages["tomography"] = (
            "# Ptycho-tomography (preview)\n\n"
            f"A preview of the 3D chain: {tom['angles']} angles on a field scaled to a laptop, "
            "each projection simulated and reconstructed, unwrapped, the background plane "
            "removed, then FBP. \n\n"
            + _table([("PCC against the phantom's own FBP", f"{tom['pcc_volume']:.4f}"),
                      ("FSC half-bit (even/odd angles)", _fmt('x_m', tom['fsc_resolution_m'])),
                      ("voxel", _fmt('x_m', tom['voxel_m'])),
                      ("mean projection PCC", f"{tom['projection_pcc_mean']:.4f}")],
                     ["metric", "value"])
            + "\n" + fig("volume.png", "Orthogonal slices of δ: from the true projections "
                         "(top) and from the ptychographic reconstructions (bottom).")
            + fig("fsc.png", "Fourier shell correlation between the volumes of the even and "
                  "the odd angles."))
    rows = paper_rows(scn["name"], fc)
    if rows:
        pages["paper"] = (
            "# Against the paper\n\nThe papers' figures next to twin's, computed from the "
            "same parameters. Where they differ the note says why; twin keeps the physics.\n\n"
            + _table(rows, ["key", "paper", "twin", "twin/paper", "section", "note"])
            + "\nSources: Cipiccia et al., Eur. Phys. J. Plus (2024) (seed 000); Wu, Kang et "
              "al., eLight (2023) (seed 002); both CC BY 4.0.\n")
    for name, text in pages.items():
        (src / f"{name}.md").write_text(text)
    order = [p for p in ("forecast", "acquisition", "reconstruction", "tomography", "paper")
             if p in pages]
    toc = "format: jb-book\nroot: index\nchapters:\n" + "".join(f"- file: {p}\n" for p in order)
    (src / "_toc.yml").write_text(toc)
    from twin import __version__

    (src / "_config.yml").write_text(CONFIG.format(title=f"twin report: {scn['name']}",
                                                   version=__version__))
    return src


def jupyter_book(src: Path) -> Path:
    """Build a Jupyter Book source folder to HTML; returns the index page."""
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build",
           str(src), "--builder", "html"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    index = src / "_build" / "html" / "index.html"
    if r.returncode != 0 or not index.exists():
        raise RuntimeError(f"jupyter-book build failed:\n{(r.stdout + r.stderr)[-4000:]}")
    return index


def build(run_dir: str | Path) -> Path:
    """Write and build the report of a run directory, or build a book folder as it is."""
    d = Path(run_dir)
    if (d / "_config.yml").exists() and (d / "_toc.yml").exists():
        return jupyter_book(d)
    if not (d / "summary.json").exists():
        raise TwinInputError("DIR", str(d), "must be a `twin run` output (with summary.json) "
                             "or a Jupyter Book folder (with _config.yml and _toc.yml)")
    return jupyter_book(write_sources(d))
