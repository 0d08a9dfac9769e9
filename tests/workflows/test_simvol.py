"""The 3D resolution measured on a simulated sub-volume (issue 21 item 4): the sub-volume keeps
the scenario's fluence and angular density, the sample really moves in the simulation, the
alignment removes what it can, the scores see what they should (a perfect volume resolves, a
blank one does not), and the calibration reads its points without crossing a cliff."""

import json
import math
import os

import numpy as np
import pytest

from twin.core.errors import TwinInputError
from twin.geometry import Geometry
from twin.scenario import load
from twin.tomo import reconstruct as tomo
from twin.workflows import simulate, simvol

from tests.workflows.test_experiment import SMALL_3D

BRAIN = "scenarios/brain_phantom_eiger_3khz.toml"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("vol") / "small.toml"
    path.write_text(SMALL_3D.replace("beam_diameter_um = 3.5", "beam_diameter_um = 1.0")
                    .replace("n_projections = 6", "n_projections = 16\nwobble_um = 0.015\n"
                             "misalignment_um = 0.2"))
    return load(path)


def test_the_sub_volume_keeps_the_scans_fluence_and_angular_density():
    s = load(BRAIN)
    sub = simvol.sub_volume(s)
    beam = 3.5e-6
    assert sub.field_m >= 3 * beam - 1e-12
    assert abs(sub.fluence_ratio - 1) <= 0.10
    # projections per π/2 × width in voxels: the scenario's 501 over a 100 µm sample
    full = 501 / (math.pi / 2 * 100e-6 / sub.voxel_m)
    mine = sub.n_angles / (math.pi / 2 * sub.sample_width_m / sub.voxel_m)
    assert mine == pytest.approx(full, rel=0.1)
    assert sub.n_angles % 2 == 0
    # the phantom's own fibres, not shrunk with the sample
    assert sub.scenario.sample.fibres == s.sample.fibres


@pytest.mark.parametrize("name", ["siemens_star_selun_110khz", "quickstart"])
def test_a_2d_scenario_has_no_sub_volume(name):
    with pytest.raises(TwinInputError, match="tomography.n_projections|sample.phantom"):
        simvol.sub_volume(load(f"scenarios/{name}.toml"))


def test_wobble_has_no_once_per_turn_part_and_misalignment_is_independent(small):
    angles = np.linspace(0, 360, 720, endpoint=False)
    wob = small.with_values({"tomography.wobble_um": 0.1, "tomography.misalignment_um": 0.0})
    w = simvol.projection_shifts(wob, angles, seed=3)
    th = np.deg2rad(angles)
    for axis in range(2):
        once = abs(np.mean(w[:, axis] * np.exp(-1j * th)))
        assert once < 1e-3 * 0.1e-6
        # smooth: neighbouring projections move together
        assert np.std(np.diff(w[:, axis])) < 0.1 * np.std(w[:, axis])
    # the wobble's RMS as a beamline samples it (half a turn, a few dozen projections),
    # averaged over many draws (Monte Carlo): the scenario's wobble_um
    half = np.linspace(0, 180, 44, endpoint=False)
    ms = np.mean([np.mean(simvol.projection_shifts(wob, half, seed=k) ** 2)
                  for k in range(400)])
    assert np.sqrt(ms) == pytest.approx(0.1e-6, rel=0.05)
    mis = small.with_values({"tomography.wobble_um": 0.0, "tomography.misalignment_um": 0.3})
    many = simvol.projection_shifts(mis, np.linspace(0, 180, 4000), seed=5)
    assert np.std(many, axis=0) == pytest.approx([0.3e-6, 0.3e-6], rel=0.05)
    assert abs(np.corrcoef(many[:-1, 0], many[1:, 0])[0, 1]) < 0.05
    both = small.with_values({"tomography.wobble_um": 0.1, "tomography.misalignment_um": 0.3})
    a = simvol.projection_shifts(both, angles, seed=3)
    b = simvol.projection_shifts(wob, angles, seed=3)
    c = simvol.projection_shifts(mis.with_values({}), angles, seed=3)
    np.testing.assert_allclose(a, b + c, atol=1e-15)


def test_the_simulated_sample_moves_by_the_shift(small):
    sub = simvol.sub_volume(small)
    sv = sub.scenario
    a = simulate.plan(sv, angle_deg=30.0, projection=1).object
    b = simulate.plan(sv, angle_deg=30.0, projection=1, sample_shift_m=(0.5e-6, 0.0)).object
    found = tomo.register_stack(np.angle(a)[None].astype(np.float32),
                                np.angle(b)[None].astype(np.float32))[0]
    # register_stack: the shift that brings b back onto a (rows, cols)
    assert found[1] == pytest.approx(-0.5e-6 / sub.voxel_m, abs=0.15)
    assert abs(found[0]) <= 0.15


def test_truth_projection_of_a_uniform_cylinder_is_its_chord(small):
    cyl = small.with_values({"sample.phantom": "uniform"})
    sub = simvol.sub_volume(cyl)
    dx = sub.voxel_m
    p = simvol.truth_projections(sub.scenario, [0.0, 70.0], (8, 64), supersample=1)
    from twin.sample.materials import lookup

    delta = lookup(cyl.sample.material, cyl.beam.energy_kev, cyl.sample.density_g_per_cm3).delta
    x = (np.arange(64) - 32) * dx
    chord = 2 * np.sqrt(np.clip((sub.sample_width_m / 2) ** 2 - x ** 2, 0, None))
    for k in range(2):
        np.testing.assert_allclose(p[k, 4], chord * delta / dx, rtol=1e-6, atol=1e-9)


def test_register_volume_recovers_a_sub_voxel_translation():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(24, 32, 32))
    f = np.fft.fftn(v)
    k = np.meshgrid(*[np.fft.fftfreq(n) for n in v.shape], indexing="ij")
    smooth = np.fft.ifftn(f * np.exp(-40 * sum(q ** 2 for q in k))).real
    shift = (1.3, -2.6, 0.4)
    moved = np.fft.ifftn(np.fft.fftn(smooth) * np.exp(-2j * np.pi * sum(
        q * s for q, s in zip(k, shift)))).real
    back = simvol.register_volume(moved, smooth)
    assert np.corrcoef(back.ravel(), smooth.ravel())[0, 1] > 0.999
    assert np.corrcoef(moved.ravel(), smooth.ravel())[0, 1] < 0.9


def _perfect(small, misalign=True, blank=False):
    """Projections of the sub-volume from the truth itself (no ptychography), moved by the
    scenario's shifts: what score_volume sees from a perfect reconstruction."""
    sub = simvol.sub_volume(small)
    sv = sub.scenario
    n = sub.n_angles
    angles = np.linspace(0, 180, n, endpoint=False)
    shifts = simvol.projection_shifts(sv, angles, 0) * (1 if misalign else 0)
    shape = simvol._region(sub)
    proj = simvol.truth_projections(sv, angles, shape)
    proj = np.asarray(tomo.shift_stack(proj, shifts[:, ::-1] / sub.voxel_m))
    if blank:
        proj = np.random.default_rng(1).normal(scale=proj.std(), size=proj.shape)
    return simvol.Projections(sub, sv, angles, shifts, shape, proj.astype(np.float32))


def test_a_perfect_misaligned_volume_is_aligned_and_resolved(small):
    pr = _perfect(small)
    sc = simvol.score_volume(pr, "fbp")
    dx = pr.sub.voxel_m
    assert sc["misalignment_rms_m"] > 1.5 * dx
    # horizontally the alignment recovers the shifts (vertically the fibres run along the
    # axis, so a vertical shift is nearly invisible: it is counted apart)
    assert sc["alignment_residual_x_m"] < 0.35 * dx
    assert not sc["unresolved"] and sc["pcc"] > 0.9
    assert sc["resolution_truth_m"] < 4 * dx
    # seed 000's procedure (even/odd xz slices, 1/7, full period) on the same volumes
    assert 2 * dx <= sc["fire_xz_split_m"] < 10 * dx
    # along and across the rotation axis: resolved as the shells are
    for part in ("truth_along", "truth_across", "truth_worst_across"):
        assert not sc[f"{part}_unresolved"], part
        assert sc[f"resolution_{part}_m"] < 6 * dx, part
    assert sc["cones_unresolved"] == 0 and sc["cones"] == 12
    assert sc["resolution_truth_worst_across_m"] >= sc["resolution_truth_across_m"] - 1e-12


def test_a_blank_volume_is_unresolved(small):
    sc = simvol.score_volume(_perfect(small, blank=True), "fbp")
    assert sc["unresolved"] and sc["split_unresolved"]
    assert sc["truth_along_unresolved"] and sc["truth_across_unresolved"]
    assert sc["split_across_unresolved"]
    assert sc["truth_worst_across_unresolved"] and sc["cones_unresolved"] == sc["cones"]
    assert abs(sc["pcc"]) < 0.1


def test_a_volume_is_scored_again_from_its_kept_arrays(small, tmp_path, monkeypatch):
    """measure_volume keeps the projections and the truth; rescore_volume reads them back and
    gives the score of the volume they came from, and None where nothing was kept."""
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path))
    pr = _perfect(small)
    truth = simvol.truth_volume(pr)
    key = simvol._key(pr.sub.scenario, 0, None)
    assert simvol.rescore_volume(small, 0) is None
    simvol._store_arrays(key, pr, truth)
    again = simvol.rescore_volume(small, 0)
    direct = simvol.score_volume(pr, small.tomography.method, truth)
    as_text = lambda d: json.dumps(d, sort_keys=True)  # noqa: E731  (NaN == NaN here)
    assert as_text({k: getattr(again, k) for k in direct}) == as_text(direct)
    assert (tmp_path / "simulated" / f"{key}.json").exists()
    # a truncated file is not a crash: nothing to rescore, and a warning says why
    npz = tmp_path / "simulated" / f"{key}.npz"
    npz.write_bytes(npz.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="cannot be read"):
        assert simvol.rescore_volume(small, 0) is None


def _cal(fl, d, ok):
    n = len(fl)
    return simvol.VolumeCalibration(1.0, list(fl), list(d), [math.nan] * n, list(d),
                                    list(ok), [1] * n, [0.9] * n, 10, 1e-5, 0.0)


def test_the_calibration_interpolates_flags_extrapolation_and_keeps_the_cliff():
    # d = 100 nm (F/1)^(-1/4) at F = 1, 4, 16
    fl = [1.0, 4.0, 16.0]
    d = [100e-9 * f ** -0.25 for f in fl]
    cal = _cal(fl, d, [True] * 3)
    v, ok, ext = cal.at(2.0)
    assert ok and not ext and v == pytest.approx(100e-9 * 2 ** -0.25, rel=1e-9)
    v, ok, ext = cal.at(64.0)
    assert ok and ext and v == pytest.approx(100e-9 * 64 ** -0.25, rel=1e-9)
    cliff = _cal(fl, [1e-6, d[1], d[2]], [False, True, True])
    assert cliff.at(1.0)[:2] == (pytest.approx(math.nan, nan_ok=True), False)
    assert cliff.at(8.0)[1]
    one = _cal([4.0], [d[1]], [True])
    assert one.at(4.0) == (pytest.approx(d[1]), True, False)
    assert one.at(8.0)[2]


def test_calibrate_volume_says_its_cost_and_refuses_above_the_limit(tmp_path):
    import subprocess
    import sys

    from tests.workflows.test_experiment import ROOT

    path = tmp_path / "small.toml"
    path.write_text(SMALL_3D.replace("beam_diameter_um = 3.5", "beam_diameter_um = 1.0")
                    .replace("n_projections = 6", "n_projections = 16"))
    r = subprocess.run([sys.executable, "-m", "twin", "calibrate", str(path), "--volume",
                        "--max-hours", "0.0001"], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "TWIN_CACHE_DIR": str(tmp_path / "cache"),
                            "PYTHONPATH": str(ROOT)}, timeout=300)
    assert r.returncode == 2, r.stderr
    assert "--max-hours" in r.stderr and "sub-volumes" in r.stderr and "core-hours" in r.stderr


def test_a_measured_volume_replaces_the_bound_in_the_forecast(monkeypatch):
    from twin.workflows import forecast

    s = load(BRAIN)
    monkeypatch.setattr(simvol, "volume_calibration", lambda sc: (None, ""))
    before = forecast.forecast(s).values
    assert before["resolution_3d_method"].startswith("bound")
    f0 = Geometry.from_scenario(s).fluence_per_m2
    cal = _cal([f0 / 2, f0, 2 * f0], [900e-9, 700e-9, 600e-9], [True] * 3)
    monkeypatch.setattr(simvol, "volume_calibration", lambda sc: (cal, ""))
    v = forecast.forecast(s).values
    assert v["resolution_3d_method"] == simvol.METHOD
    assert v["resolution_3d_forecast_m"] == pytest.approx(700e-9)
    assert v["resolution_3d_forecast_fire_m"] == pytest.approx(1400e-9)
    assert v["resolution_3d_bound_m"] == pytest.approx(before["resolution_3d_forecast_m"])
    # the bound read the 2D law at all projections' fluence (extrapolated); the measured
    # volume does not, and F₀ lies inside the 2D points and the volume's
    assert before["resolution_extrapolated"] is True
    # each 3D figure says what it is: a bound, or an FSC of the measured volume
    assert "bound" in before["resolution_3d_convention"]
    assert "FSC" in v["resolution_3d_convention"]
    assert v["resolution_extrapolated"] is False
    # at a fluence between the points: interpolated, not extrapolated by the volume
    s2 = s.with_values({"beam.flux_photons_per_s": s.beam.flux_photons_per_s * 1.5})
    v2 = forecast.forecast(s2).values
    assert 600e-9 < v2["resolution_3d_forecast_m"] < 700e-9
    assert v2["resolution_extrapolated"] is False
    # past the volume's points (and the 2D law's): extrapolated
    s3 = s.with_values({"beam.flux_photons_per_s": s.beam.flux_photons_per_s * 8})
    assert forecast.forecast(s3).values["resolution_extrapolated"] is True
    # below the cliff: unresolved, no number
    bad = _cal([f0, 2 * f0], [2e-6, 600e-9], [False, True])
    monkeypatch.setattr(simvol, "volume_calibration", lambda sc: (bad, ""))
    v3 = forecast.forecast(s).values
    assert v3["resolution_3d_forecast_m"] is None and v3["resolution_3d_resolved"] is False


def test_the_forecast_reads_along_and_across_the_axis_with_their_own_cliffs():
    """Along and across the rotation axis each has its own resolved flags. Across the axis is
    the 3D figure: a volume resolved over whole shells but not across the axis is unresolved
    (the shells' figure stays beside it), and a calibration scored before the split keeps the
    shells' figure and says so."""
    from dataclasses import replace

    from twin.analysis.volume import forecast_keys

    fl = [1.0, 2.0]
    base = _cal(fl, [150e-9, 120e-9], [True, True])
    cal = replace(base, along_m=[100e-9, 80e-9], along_resolved=[True, True],
                  across_m=[1.2e-6, 900e-9], across_resolved=[False, True])
    k = forecast_keys(cal, 1.0)
    assert k["resolution_3d_forecast_m"] is None and k["resolution_3d_resolved"] is False
    assert k["resolution_3d_shell_m"] == pytest.approx(150e-9)
    assert k["resolution_3d_along_axis_m"] == pytest.approx(100e-9)
    assert k["resolution_3d_across_axis_m"] is None
    assert "across it: unresolved" in k["resolution_3d_convention"]
    assert "across the rotation axis" in k["resolution_3d_limited_by"]
    assert k["resolution_3d_worst_m"] is None
    k2 = forecast_keys(cal, 2.0)
    assert k2["resolution_3d_across_axis_m"] == pytest.approx(900e-9)
    worst = forecast_keys(replace(cal, worst_m=[2e-6, 1.5e-6], worst_resolved=[False, True]),
                          2.0)
    assert worst["resolution_3d_worst_m"] == pytest.approx(1.5e-6)
    assert "worst of the 20° cones" in worst["resolution_3d_convention"]
    assert k2["resolution_3d_forecast_m"] == pytest.approx(900e-9)
    assert k2["resolution_3d_forecast_fire_m"] == pytest.approx(1800e-9)
    assert k2["resolution_3d_shell_m"] == pytest.approx(120e-9)
    old = forecast_keys(replace(base, along_m=[math.nan] * 2, along_resolved=[False] * 2,
                                across_m=[math.nan] * 2, across_resolved=[False] * 2), 2.0)
    assert old["resolution_3d_across_axis_m"] is None and old["resolution_3d_along_axis_m"] is None
    assert old["resolution_3d_forecast_m"] == pytest.approx(120e-9)
    assert "not scored" in old["resolution_3d_convention"]
    # one point scored across the axis, one before the split: the across figure is read from
    # the scored point alone (exact there, flagged extrapolated elsewhere), never from NaN
    mixed = replace(cal, along_m=[math.nan, 80e-9], across_m=[math.nan, 900e-9])
    at2, at1 = forecast_keys(mixed, 2.0), forecast_keys(mixed, 1.0)
    assert at2["resolution_3d_forecast_m"] == pytest.approx(900e-9)
    assert "resolution_extrapolated" not in at2
    assert at1["resolution_3d_forecast_m"] == pytest.approx(900e-9)
    assert at1["resolution_extrapolated"] is True
    assert at1["resolution_3d_shell_m"] == pytest.approx(150e-9)
    assert "1 of 2 fluences" in at1["resolution_3d_convention"]


def test_the_volume_cost_follows_the_path_through_a_tilted_plate():
    """A plate simulated with automatic multislice needs more slices where the beam crosses it
    obliquely, so its volume costs more than its projection count × the 0° projection; a
    cylinder's path is the same at every angle, so its volume costs exactly that."""
    from twin.workflows import calibrate

    def at_zero(s):
        sub = simvol.sub_volume(s)
        g = Geometry.from_scenario(sub.scenario)
        c = calibrate.cost_params(sub.scenario, g, 0.0)
        f = g.frames_per_projection
        one = (f * c["sim_core_s_per_frame"]
               + f * c["rec_iterations"] * c["rec_core_s_per_frame_iteration"])
        return sub, g, sub.n_angles * one

    ic = load("scenarios/ic_rapid_21.toml").with_values({"simulation.multislice": "auto",
                                                         "simulation.slices": None})
    sub, g, flat = at_zero(ic)
    slices = [g.multislice_slices(sub.scenario, a)
              for a in simvol.projection_angles(sub.scenario, sub.n_angles)]
    assert max(slices) > slices[0]
    assert calibrate.volume_point_seconds(ic)[2] > 1.05 * flat
    brain = load(BRAIN)
    assert calibrate.volume_point_seconds(brain)[2] == pytest.approx(at_zero(brain)[2],
                                                                     rel=1e-12)


def test_a_volume_with_a_direction_that_does_not_resolve_has_no_headline():
    """The band across the axis weighs its directions by the sample's power, so a plate that
    resolves along its normal and not in its own plane can read fine across the axis. Where a
    cone across the axis does not resolve, the volume is unresolved, and every directional
    figure stays beside, the unresolved cones named; where every cone resolves, the band's
    figure stands. An even/odd split that does not resolve gives no split figure."""
    from dataclasses import replace

    from twin.analysis.volume import forecast_keys

    fl = [1.0, 2.0]
    cal = replace(_cal(fl, [150e-9, 120e-9], [True, True]),
                  along_m=[100e-9, 80e-9], along_resolved=[True, True],
                  across_m=[160e-9, 140e-9], across_resolved=[True, True],
                  worst_m=[620e-9, 300e-9], worst_resolved=[False, True],
                  cones_unresolved=[4, 0], cones=12, worst_azimuth_deg=[105.0, 60.0],
                  split_resolved=[False, True])
    k1, k2 = forecast_keys(cal, 1.0), forecast_keys(cal, 2.0)
    # the even/odd split's bound is no figure either
    assert k1["resolution_3d_split_m"] is None
    assert k2["resolution_3d_split_m"] == pytest.approx(120e-9)
    assert k1["resolution_3d_resolved"] is False and k1["resolution_3d_forecast_m"] is None
    assert k1["resolution_3d_forecast_fire_m"] is None
    assert k1["resolution_3d_across_axis_m"] == pytest.approx(160e-9)
    assert k1["resolution_3d_shell_m"] == pytest.approx(150e-9)
    assert "4 of the 12" in k1["resolution_3d_limited_by"]
    assert k2["resolution_3d_resolved"] is True
    assert k2["resolution_3d_forecast_m"] == pytest.approx(140e-9)
    assert k2["resolution_3d_worst_m"] == pytest.approx(300e-9)
    assert "unresolved" not in k2["resolution_3d_limited_by"]
    # a volume simulated without stage motion says so, one with motion says it was aligned
    perfect = forecast_keys(replace(cal, misalignment_rms_m=0.0), 2.0)
    moved = forecast_keys(replace(cal, misalignment_rms_m=20e-9), 2.0)
    assert "perfect stage" in perfect["resolution_3d_limited_by"]
    assert "perfect stage" not in moved["resolution_3d_limited_by"]
    # a point scored across the axis before the cones existed (its worst cone NaN) does not
    # switch the rule off for the points that were scored cone by cone
    mixed = replace(cal, worst_m=[math.nan, 620e-9], worst_resolved=[False, False],
                    cones_unresolved=[-1, 4])
    assert forecast_keys(mixed, 2.0)["resolution_3d_resolved"] is False
    assert forecast_keys(mixed, 2.0)["resolution_3d_forecast_m"] is None
    # the band unresolved: said as such, not as some directions
    band = forecast_keys(replace(cal, across_resolved=[False, False]), 2.0)
    assert band["resolution_3d_resolved"] is False
    assert "some directions" not in band["resolution_3d_limited_by"]


def test_the_shipped_ic_volume_is_read_field_by_field():
    """The calibration read from the shipped 21-angle IC volume holds, field by field, what its
    entry recorded (the columns are matched by name), and the forecast reads it unresolved."""
    import json

    from twin.workflows import simres

    s = load("scenarios/ic_rapid_21.toml")
    cal, source = simvol.volume_calibration(s)
    assert source == "" and cal is not None
    entry = [json.loads(p.read_text()) for p in simres.SHIPPED.glob("vol*.json")]
    entry = [e for e in entry if e.get("n_angles") == cal.n_angles
             and e.get("cones") and e["sample_width_m"] == pytest.approx(cal.sub_volume_m)]
    assert len(entry) == 1
    e = entry[0]
    assert cal.across_m == [pytest.approx(e["resolution_truth_across_m"])]
    assert cal.along_m == [pytest.approx(e["resolution_truth_along_m"])]
    assert cal.worst_m == [pytest.approx(e["resolution_truth_worst_across_m"])]
    assert cal.worst_resolved == [not e["truth_worst_across_unresolved"]]
    assert cal.cones == e["cones"] and cal.cones_unresolved == [e["cones_unresolved"]]
    assert cal.worst_azimuth_deg == [pytest.approx(e["worst_across_azimuth_deg"])]
    assert cal.split_resolved == [not e["split_unresolved"]]
    from twin.workflows import forecast

    v = forecast.forecast(s).values
    assert v["resolution_3d_resolved"] is (e["cones_unresolved"] == 0
                                           and not e["truth_across_unresolved"])
