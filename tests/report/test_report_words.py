"""Wrong or noisy words in the report and the CLI (issue 24, defect 10)."""

import re
import types
import warnings

import numpy as np
import pytest

from twin.core.formatting import format_value


def test_overheads_are_quoted_against_the_scanning_time():
    # 1.0 s of scanning and 3.38 s per projection: the overheads add 238 % to the scanning
    # time and are 70.4 % of the projection's
    fc = {"scan_time_s": 1.0, "projection_time_s": 3.38, "frames_per_projection": 1000,
          "frame_rate_hz": 1000.0}
    text = _time_text(fc)
    assert "add 238 % to that" in text
    assert "70.4 %" in text and "add 70" not in text


def _time_text(fc_time):
    from twin.report import book

    fc = {"photons_total": 1e10, "dose_gy": 1e6, "frame_bytes": 8192, "n_projections": 1,
          "data_volume_bytes": 1e9, "data_rate_bytes_per_s": 1e6,
          "peak_count_rate_per_pixel_hz": 1e5, "detector_max_count_rate_per_pixel_hz": 1e7,
          "count_rate_loss_fraction": 0.01, "peak_counts_per_frame": 100.0,
          "detector_max_counts": 4095, "saturated": False, "pixel_size_m": 1e-8,
          "resolution_limit_m": 1e-8, "resolution_forecast_m": 2e-8,
          "resolution_limited_by": "photons", "resolution_model": "rose", **fc_time}
    scn = {"tomography": {"n_projections": 0}, "detector": {"crop": 64}}
    return next(i["text"] for i in book.limits(fc, scn) if i["topic"] == "Time")


@pytest.mark.parametrize("value, text", [(3.006e-22, "0 pm"), (-4e-23, "0 pm"),
                                         (2.5e-12, "2.5 pm"), (1.2e-9, "1.2 nm")])
def test_rounding_noise_is_not_quoted_as_a_length(value, text):
    assert format_value("position_error_rms_m", value) == text


def test_sweep_plot_time_axis_in_the_unit_of_its_values(tmp_path):
    from twin import scenario
    from twin.workflows import sweep
    from pathlib import Path

    s = scenario.load(Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.toml")
    keys, points = sweep.grid(s)
    table = sweep.evaluate_chunk(s.model_copy(update={"sweep": {}}), keys, points)
    median_s = float(np.median(table["total_time_s"]))
    assert median_s < 120                              # a scan of seconds
    labels = []
    import matplotlib.axes

    orig = matplotlib.axes.Axes.set_ylabel
    try:
        matplotlib.axes.Axes.set_ylabel = lambda self, t, *a, **k: (labels.append(t),
                                                                      orig(self, t, *a, **k))[1]
        sweep.plot_sweep(table, s, tmp_path / "p")
    finally:
        matplotlib.axes.Axes.set_ylabel = orig
    time_labels = [t for t in labels if "time" in t]
    unit = "ms" if median_s < 1 else "s"
    assert time_labels and all(t.endswith(f"[{unit}]") for t in time_labels), time_labels


def test_report_warns_of_saturation_and_of_3d_finer_than_2d():
    from twin.report import book

    fc = {"saturated": True, "peak_count_rate_per_pixel_hz": 2e7,
          "detector_max_count_rate_per_pixel_hz": 1e7, "resolution_forecast_m": 30e-9,
          "resolution_3d_forecast_m": 25e-9, "resolution_extrapolated": False}
    said = book.report_warnings(fc, {"simulate": {"saturated_frames": 12, "frames": 400}})
    text = " ".join(said)
    assert "saturates" in text and "12 of 400" in text
    assert "finer than" in text and "25 nm" in text and "30 nm" in text
    calm = dict(fc, saturated=False, resolution_3d_forecast_m=45e-9)
    assert book.report_warnings(calm, {"simulate": {"saturated_frames": 0}}) == []


def test_index_page_shows_the_warnings_as_admonitions():
    from twin.report import book

    import collections

    page = book._render("index.md", name="x", description="", v=collections.defaultdict(str),
                        is_3d=False, sample="s",
                        fov="f", angular_range="", n_beams=1, detector="d", distance="1 m",
                        limits=[], headline=[], comparison=[], comparison_notes=[],
                        params=[], sections=[], figures=set(),
                        warnings=["The detector saturates."])
    assert re.search(r"```\{warning\}\s*\nThe detector saturates\.\s*\n```", page)


def test_twin_run_shows_warnings_as_messages(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import twin.report as tr
    from twin import cli

    def fake_run(s, out, progress, build_report, log):
        warnings.warn("the scan is much larger than the sample", UserWarning)
        warnings.warn("the scan is much larger than the sample", UserWarning)
        return {"stages": {"simulate": "run"}}

    monkeypatch.setattr(tr, "run", fake_run)
    from pathlib import Path

    scn = Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.toml"
    r = CliRunner().invoke(cli.app, ["run", str(scn), "-o", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    out = r.output                                  # stdout and stderr together
    assert out.count("twin: warning: the scan is much larger than the sample") == 1
    assert "UserWarning" not in out and ".py:" not in out


def test_defocus_search_keeps_the_probe_unless_the_cost_clearly_drops(monkeypatch,
                                                                      quick_cxi):
    from twin.io.cxi import read_cxi
    from twin.recon import auto, engines

    data = read_cxi(quick_cxi, frames=40)
    sub = auto._centre_subset(data, 40)
    p0 = np.asarray(data.illumination, np.complex64)
    n = p0.shape[-1]
    for costs, moved in (([0.04381, 0.0438099, 0.04381, 0.04382, 0.0439, 0.045, 0.046], False),
                         ([0.04381, 0.050, 0.0390, 0.04382, 0.0439, 0.045, 0.046], True)):
        it = iter(costs)
        monkeypatch.setattr(engines, "reconstruct",
                            lambda *a, **k: types.SimpleNamespace(cost=[next(it)]))
        dz, found = auto._defocus_search(sub, p0, n, 1, engines.Options())
        assert (dz != 0) is moved
        if moved:
            assert dz > 0                                # +½ step, the 10 % lower cost


def test_a_3d_volume_that_does_not_resolve_is_said_so_and_judged_at_its_bound():
    """Where the simulated sub-volume does not resolve, the report warns of it, its Resolution
    paragraph quotes why instead of a blank figure, and its Dose paragraph measures the dose
    against the tolerable dose at the 3D bound, not at the 2D figure."""
    from twin.report import book

    why = "unresolved in some directions: 4 of the 12 cones"
    fc = {"photons_total": 1e10, "dose_gy": 1e6, "frame_bytes": 8192, "n_projections": 21,
          "n_projections_crowther": 600, "data_volume_bytes": 1e9,
          "data_rate_bytes_per_s": 1e6, "peak_count_rate_per_pixel_hz": 1e5,
          "detector_max_count_rate_per_pixel_hz": 1e7, "count_rate_loss_fraction": 0.01,
          "peak_counts_per_frame": 100.0, "detector_max_counts": 4095, "saturated": False,
          "pixel_size_m": 1e-8, "resolution_limit_m": 1e-8, "resolution_forecast_m": 2e-8,
          "resolution_limited_by": "photons", "resolution_model": "simulated",
          "scan_time_s": 1.0, "projection_time_s": 1.2, "frames_per_projection": 1000,
          "frame_rate_hz": 1000.0, "crowther_resolution_m": 1.5e-6,
          "resolution_3d_forecast_m": None, "resolution_3d_resolved": False,
          "resolution_3d_bound_m": 1.6e-6, "resolution_3d_limited_by": why}
    scn = {"tomography": {"n_projections": 21}, "detector": {"crop": 64}}
    words = {i["topic"]: i["text"] for i in book.limits(fc, scn)}
    assert why in words["Resolution"] and "—" not in words["Resolution"]
    # 10⁸ Gy per nm at the 1.6 µm bound: 1.6 × 10¹¹ Gy, of which 10⁶ Gy is 0.000625 % (two digits: 0.00063)
    assert "1.6 µm" in words["Dose"] and "0.00063 %" in words["Dose"]
    said = " ".join(book.report_warnings(fc, {}))
    assert "does not resolve" in said and "1.6 µm" in said
    assert book.report_warnings(dict(fc, resolution_3d_resolved=True,
                                     resolution_3d_forecast_m=3e-7), {}) == []
