"""The Jupyter Book report of a run (``twin report DIR``), built offline to static HTML.

:func:`build` writes the book's sources into ``DIR/report`` — the scenario's parameters with
units, the forecast, the sweep, the acquisition (probe, trajectory, frames), the
reconstruction against the ground truth with its FRC, the 3D chain with its FSC, and, for the
seed scenarios, twin's figures against the papers' — and runs Jupyter Book 1.x on them with
MathJax served from the book itself (sphinx-mathjax-offline), so the pages load nothing from
the internet.
"""

from __future__ import annotations

import math
import re
import shutil
import tomllib
from importlib import resources
from pathlib import Path

from twin.core.errors import TwinInputError
from twin.core.formatting import format_value, label, shown_value
from twin.report.tools import find_chromium, jupyter_book, print_pdf
from twin.workflows.rundir import RunDir

_PHANTOM_TABLES = {"fibre_bundle": "fibres", "integrated_circuit": "circuit",
                   "siemens_star": "star"}
_RESOLUTION_FIELDS = {
    "pixel": (),
    "howells": ("reference_resolution_m", "reference_flux_photons_per_s",
                "reference_scan_rate_um2_per_s"),
    "rose": ("feature_material", "background_material", "snr"),
    "simulated": ("calibration_seeds", "patch"),
}
# Howells et al., J. Electron Spectrosc. Relat. Phenom. 170 (2009): the maximum tolerable dose
# for imaging at resolution d is roughly 10^8 Gy per nm of d (an empirical line through
# measurements on frozen-hydrated biological material).
_HOWELLS_GY_PER_NM = 1e8


def _env():
    import jinja2

    root = resources.files("twin.report").joinpath("templates")
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(root)),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True)


def _render(template: str, **context) -> str:
    return _env().get_template(template).render(**context)


def _fmt(key: str, v) -> str:
    return format_value(key, v)


def paper_rows(name: str, values: dict) -> list[tuple]:
    """(label, paper, twin, twin/paper, section, note) rows of the seed paper's figures.

    Parameters
    ----------
    name : str
        The scenario's name: its table in ``twin/data/paper_figures.toml`` (none: no rows).
    values : dict
        The forecast's values by key (``summary["forecast"]``), in the keys' SI units.

    Returns
    -------
    list of tuple of str
        One row per figure; the ratio is "—" where twin has no number or the paper's is 0.
    """
    table = tomllib.loads(resources.files("twin.data").joinpath("paper_figures.toml").read_text())
    rows = []
    for row in table.get(name, []):
        v = values.get(row["key"])
        ratio = f"{v / row['paper']:.2f}" if isinstance(v, (int, float)) and row["paper"] else "—"
        rows.append((label(row["key"]), _fmt(row["key"], row["paper"]), _fmt(row["key"], v),
                     ratio, row["section"], row.get("note", "")))
    return rows


def _paper_sections(name: str) -> list[str]:
    table = tomllib.loads(resources.files("twin.data").joinpath("paper_figures.toml").read_text())
    return list(dict.fromkeys(r["section"] for r in table.get(name, [])))


def _rows(model, values: dict, only=None):
    """(name, value with unit, description) of the set, non-table fields of ``model``."""
    from twin.workflows.scenario_tools import field_unit

    out = []
    for name, field in model.model_fields.items():
        v = values.get(name)
        if v is None or isinstance(v, dict) or (only is not None and name not in only):
            continue
        unit = field_unit(name)
        shown = f"`{v}`" + (f" {unit}" if unit else "")
        out.append((f"`{name}`", shown, " ".join((field.description or "—").split())))
    return out


def _source(model) -> str:
    """The paper section (``seed NNN §x.y``) that a schema model's docstring cites, or ""."""
    m = re.search(r"seed \d{3}(?: §[\d.]+)?", model.__doc__ or "")
    return m.group(0) if m else ""


def used_parameters(scn: dict) -> list[dict]:
    """The scenario's parameters that its experiment uses, section by section.

    The phantom's own table only (a Siemens star shows no fibre parameters), the tomography
    table only in 3D, the resolution fields of the chosen model only, and no unset (None)
    field. Each section names the paper section its schema cites, if any.

    Parameters
    ----------
    scn : dict
        The scenario as a dict (``Scenario.model_dump(mode="json")``).

    Returns
    -------
    list of dict
        ``{"name", "source", "rows"}`` per section with rows: (field, value with unit,
        description).
    """
    from twin import scenario as sc

    is_3d = scn["tomography"]["n_projections"] != 0
    out = [{"name": "sample", "source": "", "rows": _rows(sc.Sample, scn["sample"])}]
    sub = _PHANTOM_TABLES.get(scn["sample"]["phantom"])
    if sub:
        model = sc.Sample.model_fields[sub].annotation
        out.append({"name": f"sample.{sub}", "source": _source(model),
                    "rows": _rows(model, scn["sample"][sub])})
    for name, model in (("beam", sc.Beam), ("optics", sc.Optics), ("scan", sc.Scan),
                        ("detector", sc.Detector)):
        out.append({"name": name, "source": "", "rows": _rows(model, scn[name])})
    if is_3d:
        out.append({"name": "tomography", "source": "",
                    "rows": _rows(sc.Tomography, scn["tomography"])})
    out.append({"name": "reconstruction", "source": "",
                "rows": _rows(sc.Reconstruction, scn["reconstruction"])})
    model_name = scn["resolution"]["model"]
    out.append({"name": "resolution", "source": "", "rows": _rows(
        sc.Resolution, scn["resolution"],
        only=("model", *_RESOLUTION_FIELDS.get(model_name, tuple(scn["resolution"]))))})
    run_only = None if is_3d else ("frames", "fov_um", "iterations", "modes")
    out.append({"name": "run", "source": "", "rows": _rows(sc.Run, scn["run"], only=run_only)})
    return [s for s in out if s["rows"]]


def limits(fc: dict, scn: dict) -> list[dict]:
    """What limits the time, dose, data, count rate and resolution of the plan, in words.

    Parameters
    ----------
    fc : dict
        The forecast's values by key (``summary["forecast"]``), in the keys' SI units.
    scn : dict
        The scenario as a dict (``tomography``, ``detector`` tables).

    Returns
    -------
    list of dict
        ``{"topic", "text"}`` (Markdown), led by "Feasibility" where the forecast has flags.
    """
    f = _fmt
    out = []
    scan_s, proj_s = fc["scan_time_s"], fc["projection_time_s"]
    added = proj_s / scan_s - 1 if scan_s else 0.0     # relative to the scanning time
    share = 1 - scan_s / proj_s if proj_s else 0.0     # part of the time per projection
    text = (f"The detector's frame rate sets the pace: {fc['frames_per_projection']:,} frames at "
            f"{f('frame_rate_hz', fc['frame_rate_hz'])} take {f('scan_time_s', scan_s)}"
            f" per projection; line turnarounds and per-projection overheads add "
            f"{100 * added:.3g} % to that ({f('projection_time_s', proj_s)} in all, of which "
            f"the overheads are {100 * share:.3g} %).")
    if scn["tomography"]["n_projections"] != 0:
        text += (f" {fc['n_projections']:,} projections (Crowther's criterion for the field "
                 f"would ask for {fc['n_projections_crowther']:,}).")
    out.append({"topic": "Time", "text": text})
    # a 3D plan whose volume does not resolve is judged at its bound, not at its 2D figure
    res = (fc.get("resolution_3d_forecast_m") or fc.get("resolution_3d_bound_m")
           or fc["resolution_forecast_m"])
    tolerable = _HOWELLS_GY_PER_NM * res * 1e9
    out.append({"topic": "Dose", "text": (
        f"{f('photons_total', fc['photons_total'])} on the sample deposit "
        f"{f('dose_gy', fc['dose_gy'])}. Howells et al. (2009) put the maximum dose that "
        f"biological material tolerates at about 10⁸ Gy per nm of resolution: "
        f"{f('dose_gy', tolerable)} at {f('x_m', res)}, so this plan uses "
        f"{100 * fc['dose_gy'] / tolerable:.2g} % of it.")})
    out.append({"topic": "Data", "text": (
        f"{f('frame_bytes', fc['frame_bytes'])} per stored frame "
        f"({scn['detector'].get('crop') or 'full'} pixels square) × "
        f"{fc['frames_per_projection'] * fc['n_projections']:,} frames = "
        f"{f('data_volume_bytes', fc['data_volume_bytes'])}, written at "
        f"{f('data_rate_bytes_per_s', fc['data_rate_bytes_per_s'])} while scanning.")})
    out.append({"topic": "Count rate", "text": _count_rate_text(fc)})
    out.append({"topic": "Resolution", "text": _resolution_text(fc)})
    if fc.get("flags"):        # the forecast's feasibility warnings, first and in bold
        from twin.workflows.forecast import flag_message

        why = "; ".join(flag_message(name, fc) for name in fc["flags"])
        out.insert(0, {"topic": "Feasibility", "text": f"**Not feasible as planned**: {why}."})
    return out


def _count_rate_text(fc: dict) -> str:
    """The "Count rate" paragraph of :func:`limits`: the direct beam's peak against the
    detector's limits."""
    f = _fmt
    peak, lim = fc["peak_count_rate_per_pixel_hz"], fc["detector_max_count_rate_per_pixel_hz"]
    text = (f"The direct beam peaks at {f('peak_count_rate_per_pixel_hz', peak)} on one pixel, "
            f"{100 * peak / lim:.2g} % of the detector's {f('peak_count_rate_per_pixel_hz', lim)}"
            f"; dead time loses {100 * fc['count_rate_loss_fraction']:.2g} % of the counts "
            f"there, and a frame holds at most {fc['peak_counts_per_frame']:.3g} of the "
            f"counter's {fc['detector_max_counts']:.0f} counts.")
    if fc["saturated"]:
        text += (" **The detector saturates**: lower the flux, spread the direct beam (a "
                 "diffuser) or bin pixels.")
    return text


def _resolution_text(fc: dict) -> str:
    """The "Resolution" paragraph of :func:`limits`: pixel, aperture, forecast and, in 3D,
    Crowther's limit."""
    f = _fmt
    text = (f"The pixel λz/(N·p) is {f('x_m', fc['pixel_size_m'])} and the detector's aperture "
            f"allows {f('x_m', fc['resolution_limit_m'])}; the forecast "
            f"{f('x_m', fc['resolution_forecast_m'])} is limited by "
            f"{fc['resolution_limited_by']} ({fc['resolution_model']}).")
    if fc.get("crowther_resolution_m") is not None and fc.get("resolution_3d_resolved") is False:
        text += (f" In 3D, {fc['n_projections']:,} projections support "
                 f"{f('x_m', fc['crowther_resolution_m'])} by Crowther's criterion, and the "
                 f"simulated sub-volume does not resolve: {fc['resolution_3d_limited_by']}.")
    elif fc.get("crowther_resolution_m") is not None:
        lim3 = ("the number of projections (Crowther)" if fc["crowther_resolution_m"]
                >= fc["resolution_forecast_m"] else "the 2D resolution of each projection")
        text += (f" In 3D, {fc['n_projections']:,} projections support "
                 f"{f('x_m', fc['crowther_resolution_m'])} by Crowther's criterion, so the 3D "
                 f"resolution {f('x_m', fc['resolution_3d_forecast_m'])} is limited by {lim3}.")
    return text


def report_warnings(fc: dict, summary: dict) -> list[str]:
    """What a reader must not miss, shown as warnings at the top of the report: a saturated
    detector (forecast or simulated frames), and a 3D resolution finer than the 2D one of the
    projections it is made from.

    Parameters
    ----------
    fc : dict
        The forecast's values by key (``summary["forecast"]``).
    summary : dict
        The run's ``summary.json`` (its ``simulate`` section's saturated frames).

    Returns
    -------
    list of str
        The warnings (Markdown), none where there is nothing to warn about.
    """
    f = _fmt
    out = []
    if fc.get("saturated"):
        out.append(
            f"The detector saturates: the direct beam peaks at "
            f"{f('peak_count_rate_per_pixel_hz', fc.get('peak_count_rate_per_pixel_hz'))} on one "
            f"pixel, above what it counts "
            f"({f('peak_count_rate_per_pixel_hz', fc.get('detector_max_count_rate_per_pixel_hz'))}"
            "). Lower the flux, spread the direct beam or bin pixels.")
    sim = summary.get("simulate") or {}
    if sim.get("saturated_frames"):
        total = sim.get("frames")
        of = f" of {total:,}" if isinstance(total, int) else ""
        out.append(f"{sim['saturated_frames']:,}{of} simulated frames have a saturated pixel.")
    if fc.get("resolution_3d_resolved") is False:
        out.append("The simulated sub-volume does not resolve in 3D at this plan's fluence and "
                   f"angular density: {fc.get('resolution_3d_limited_by')}. No 3D resolution "
                   "is forecast; the bound is "
                   f"{f('x_m', fc.get('resolution_3d_bound_m'))}.")
    r2, r3 = fc.get("resolution_forecast_m"), fc.get("resolution_3d_forecast_m")
    if r2 is not None and r3 is not None and math.isfinite(r2) and math.isfinite(r3) \
            and r3 < r2:
        out.append(
            f"The 3D resolution forecast ({f('x_m', r3)}) is finer than the 2D resolution of "
            f"each projection ({f('x_m', r2)}), although a tomogram cannot resolve what its "
            f"projections do not; the forecast "
            f"{'extrapolates' if fc.get('resolution_extrapolated') else 'does not extrapolate'}"
            " beyond the simulated fluences. Treat the 3D number as optimistic.")
    return out


def _simulated_point(rd: RunDir, fc: dict, scn: dict) -> tuple[float | None, str]:
    """The simulated resolution of the scenario's own point: the forecast's, or the simulated
    sweep's row at the scenario's values."""
    own = fc.get("resolution_simulated_m")
    if own is not None and math.isfinite(own):
        return fc["resolution_simulated_m"], "the forecast's own simulation"
    if not rd.sweep_csv.exists():
        return None, ""
    import pandas as pd

    table = pd.read_csv(rd.sweep_csv)
    if "resolution_simulated_m" not in table:
        return None, ""
    mask = pd.Series(True, index=table.index)
    for key in scn.get("sweep", {}):
        node = scn
        for part in key.split("."):
            node = node[part]
        col = table[key]
        mask &= (col == node) if col.dtype == object else ((col - node).abs() <= 1e-9 * abs(node))
    if not mask.any():
        return None, ""
    value = float(table.loc[mask, "resolution_simulated_m"].iloc[0])
    return (value, "the simulated sweep") if math.isfinite(value) else (None, "")


def comparison(rd: RunDir, fc: dict, scn: dict, summary: dict) -> tuple[list, list[str]]:
    """Rows of forecast against simulated and reconstructed resolution, and notes that explain
    a disagreement (more than 25 % either way).

    Parameters
    ----------
    rd : RunDir
        The run directory (its sweep table, for the simulated resolution).
    fc : dict
        The forecast's values by key (``summary["forecast"]``), metres for resolutions.
    scn : dict
        The scenario as a dict (the sweep's axes locate its own point).
    summary : dict
        The run's ``summary.json`` (``reconstruct`` and ``simulate`` sections).

    Returns
    -------
    rows : list of tuple of str
        (what, resolution, how it is measured).
    notes : list of str
        Markdown sentences.
    """
    f = _fmt
    px = fc["pixel_size_m"]
    rows = [("forecast (closed form)", f("x_m", fc["resolution_forecast_m"]),
             fc["resolution_model"]),
            ("reconstructed pixel", f("x_m", px), "λz/(N·p)")]
    sim, how = _simulated_point(rd, fc, scn)
    if sim is not None:
        rows.append(("simulated", f("x_m", sim), f"FRC half-bit, from {how}"))
    rec = summary.get("reconstruct", {})
    notes = []
    if rec:
        rows.append(("reconstructed (this run)", f("x_m", rec["frc_resolution_m"]),
                     "FRC half-bit against the ground truth"))
        rows.append(("reconstructed (this run), 1/7", f("x_m", rec.get("frc_resolution_7_m")),
                     "FRC 1/7 threshold"))
        measured = rec["frc_resolution_m"]
        ratio = measured / fc["resolution_forecast_m"]
        if abs(math.log(ratio)) <= math.log(1.25):
            notes.append(f"The reconstruction agrees with the forecast within 25 % "
                         f"(measured/forecast = {ratio:.2f}).")
        else:
            why = _disagreement(fc, summary, measured)
            notes.append(f"**The reconstruction measures {ratio:.2f}× the forecast.** Why: "
                         + "; ".join(why) + ".")
        if sim is not None:
            notes.append(f"Simulated against reconstructed: {sim / measured:.2f}.")
    else:
        notes.append("This run has no reconstruction to compare with.")
    return rows, notes


def _disagreement(fc: dict, summary: dict, measured: float) -> list[str]:
    """Why the reconstruction's resolution ``measured`` (metres) is not the forecast's: the
    reasons :func:`comparison` gives, as clauses."""
    f = _fmt
    px = fc["pixel_size_m"]
    rec = summary.get("reconstruct", {})
    sim_info = summary.get("simulate", {})
    why = []
    if fc["resolution_limited_by"] == "pixel size":
        why.append("the forecast is the pixel size, the finest the sampling allows; an "
                   "FRC with any noise or error left crosses the half-bit threshold "
                   f"before the Nyquist frequency (here at {measured / px:.2f} pixels)")
    frames_run = sim_info.get("frames")
    if frames_run and frames_run < fc["frames_per_projection"]:
        why.append(f"the run simulated and reconstructed {frames_run:,} of the "
                   f"{fc['frames_per_projection']:,} frames of a projection, a smaller "
                   "field whose edges are less often illuminated")
    if rec.get("iterations"):
        why.append(f"it stopped after {rec['iterations']} iterations")
    err = sim_info.get("position_error_rms_m") or 0.0
    why.append("the simulation includes what the closed form leaves out: the "
               "detector's dead time and counter, "
               + (f"positions known to {f('x_m', err)} rms, " if err > 1e-12 else "")
               + "motion blur and a probe the reconstruction has to find")
    return why


def write_sources(run_dir: Path) -> Path:
    """Write the report's Jupyter Book sources into ``run_dir/report`` from the templates.

    Parameters
    ----------
    run_dir : Path
        A run directory of ``twin run``: its ``summary.json``, scenario and
        ``figures/`` are read.

    Returns
    -------
    Path
        The book's source folder ``run_dir/report`` (made afresh: an old one is removed).
    """
    rd = RunDir(Path(run_dir))
    summary = rd.summary()
    scn = rd.scenario_dict()
    fc = summary["forecast"]
    src = rd.report
    common = {"figures": _copy_figures(rd, src)}
    pages = {"index": _index_page(rd, scn, summary, common)}
    pages["forecast"] = _render(
        "forecast.md", **common, model=fc.get("resolution_model"),
        limited_by=fc.get("resolution_limited_by"), sweep=summary.get("sweep"),
        rows=[(label(k), _fmt(k, x), f"`{k}`") for k, x in fc.items()])
    pages.update(_result_pages(scn["name"], summary, common))
    _write_book(src, pages, scn["name"])
    return src


def _copy_figures(rd: RunDir, src: Path) -> set[str]:
    """Make the book folder ``src`` afresh with a copy of the run's figures.

    Returns
    -------
    set of str
        The file names of the figures the book holds (``figures/NAME.png``).
    """
    if src.exists():
        shutil.rmtree(src)
    (src / "figures").mkdir(parents=True)
    for p in rd.figures.glob("*.png"):
        shutil.copy(p, src / "figures" / p.name)
    return {p.name for p in (src / "figures").glob("*.png")}


def _index_page(rd: RunDir, scn: dict, summary: dict, common: dict) -> str:
    """The book's first page: the experiment, the headline numbers and forecast vs run.

    Parameters
    ----------
    rd : RunDir
    scn : dict
        The run's scenario (``RunDir.scenario_dict``).
    summary : dict
        The run's ``summary.json``; its ``forecast`` section gives the numbers.
    common : dict
        Template variables every page gets (``figures``).

    Returns
    -------
    str
        The page's Markdown.
    """
    fc = summary["forecast"]
    v = {k: shown_value(k, x, fc) for k, x in fc.items()}
    v["flux_photons_per_s"] = _fmt("flux_photons_per_s", scn["beam"]["flux_photons_per_s"])
    sample = scn["sample"]
    is_3d = scn["tomography"]["n_projections"] != 0
    comp_rows, comp_notes = comparison(rd, fc, scn, summary)
    headline = [(label(k), shown_value(k, fc.get(k), fc), f"`{k}`") for k in (
        "total_time_s", "n_projections", "dose_gy", "data_volume_bytes", "pixel_size_m",
        "resolution_forecast_m", "resolution_3d_forecast_m", "peak_count_rate_per_pixel_hz",
        "saturated") if fc.get(k) is not None or shown_value(k, None, fc) == "unresolved"]
    return _render(
        "index.md", **common, warnings=report_warnings(fc, summary), name=scn["name"],
        description=scn.get("description", ""),
        v=v, is_3d=is_3d, sample=f"{sample['phantom'].replace('_', ' ')} of "
        f"{sample['material']}", fov=f"{scn['scan']['fov_x_um']:g} × "
        f"{scn['scan']['fov_y_um']:g} µm²",
        angular_range=f"{scn['tomography']['angular_range_deg']:g}°",
        n_beams=scn["scan"]["n_beams"], detector=f"{scn['detector']['preset']}",
        distance=_fmt("distance_m", scn["detector"]["distance_m"]),
        limits=limits(fc, scn), headline=headline, comparison=comp_rows,
        comparison_notes=comp_notes, params=used_parameters(scn),
        sections=_paper_sections(scn["name"]))


def _result_pages(name: str, summary: dict, common: dict) -> dict[str, str]:
    """The pages of what the run did (acquisition, reconstruction, tomography) and of the
    paper it reproduces, each only where the run has it.

    Parameters
    ----------
    name : str
        The scenario's name (which paper's numbers, if any).
    summary : dict
        The run's ``summary.json``.
    common : dict
        Template variables every page gets (``figures``).

    Returns
    -------
    dict
        Page name → Markdown.
    """
    fc = summary["forecast"]
    pages = {}
    sim = summary.get("simulate", {})
    if sim:
        pages["acquisition"] = _render("acquisition.md", **common, sim={
            "frames": f"{sim.get('frames', 0):,}",
            "mean": f"{sim.get('mean_counts_per_frame', 0):.4g}",
            "peak": f"{sim.get('peak_counts', 0):g}", "saturated": sim.get("saturated_frames", 0),
            "position_error": _fmt("x_m", sim.get("position_error_rms_m"))})
    rec = summary.get("reconstruct", {})
    if rec:
        pages["reconstruction"] = _render("reconstruction.md", **common, rows=[
            ("PCC (phase)", f"{rec['pcc_phase']:.4f}"),
            ("SSIM (phase)", f"{rec['ssim_phase']:.4f}"),
            ("MS-SSIM (phase)", f"{rec['ms_ssim_phase']:.4f}"),
            ("FRC half-bit resolution", _fmt("x_m", rec["frc_resolution_m"])),
            ("FRC 1/7 resolution", _fmt("x_m", rec["frc_resolution_7_m"])),
            ("forecast resolution", _fmt("x_m", fc["resolution_forecast_m"])),
            ("phase rms error", f"{rec['phase_rms_error_rad']:.4f} rad"),
            ("iterations", rec["iterations"]),
            ("speed", f"{rec['frame_iterations_per_s']:.0f} frame-iterations/s")])
    tom = summary.get("tomography")
    if tom:
        pages["tomography"] = _render("tomography.md", **common, angles=tom["angles"], rows=[
            ("PCC against the phantom's own FBP", f"{tom['pcc_volume']:.4f}"),
            ("FSC half-bit (even/odd angles)", _fmt("x_m", tom["fsc_resolution_m"])),
            ("voxel", _fmt("x_m", tom["voxel_m"])),
            ("mean projection PCC", f"{tom['projection_pcc_mean']:.4f}")])
    rows = paper_rows(name, fc)
    if rows:
        pages["paper"] = _render("paper.md", **common, rows=rows)
    return pages


def _write_book(src: Path, pages: dict[str, str], name: str) -> None:
    """Write the pages, their table of contents (index first, then the run's stages in order)
    and the book's configuration into ``src``."""
    for page, text in pages.items():
        (src / f"{page}.md").write_text(text)
    order = [p for p in ("forecast", "acquisition", "reconstruction", "tomography", "paper")
             if p in pages]
    toc = "format: jb-book\nroot: index\nchapters:\n" + "".join(f"- file: {p}\n" for p in order)
    (src / "_toc.yml").write_text(toc)
    from twin import __version__

    (src / "_config.yml").write_text(_render("_config.yml", title=f"twin report: {name}",
                                             version=__version__))


def build(run_dir: str | Path, pdf: bool = False) -> Path:
    """Write and build the report of a run directory, or build a book folder as it is.

    Parameters
    ----------
    run_dir : str or Path
        A ``twin run`` output directory (the report goes to ``run_dir/report``), or a Jupyter
        Book folder.
    pdf : bool
        Also print the whole book, as one page per chapter, to ``run_dir/report.pdf`` (a book
        folder: ``<folder>/_build/book.pdf``) with headless Chromium.

    Returns
    -------
    Path
        The HTML index page.
    """
    d = Path(run_dir)
    is_book = (d / "_config.yml").exists() and (d / "_toc.yml").exists()
    if not is_book and not (d / "summary.json").exists():
        raise TwinInputError("DIR", str(d), "must be a `twin run` output (with summary.json) "
                             "or a Jupyter Book folder (with _config.yml and _toc.yml)")
    if pdf and find_chromium() is None:
        # refused before anything is rewritten: the HTML report built before stays as it is
        src = d if is_book else RunDir(d).report
        built = src / "_build" / "html" / "index.html"
        print_pdf(built if built.exists() else src, Path("report.pdf"))   # raises the hint
    src, target = (d, d / "_build" / "book.pdf") if is_book else (write_sources(d),
                                                                  d / "report.pdf")
    index = jupyter_book(src)
    if pdf:
        print_pdf(jupyter_book(src, "singlehtml"), target)
    return index
