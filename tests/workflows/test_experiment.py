"""A whole experiment from the command line (issue 22 §4): `twin simulate` of a 3D scenario to a
master file, one CXI per projection on Dask, resumable and indifferent to a killed worker; `twin
reconstruct` of the master file to a Data Exchange stack; `twin tomo` of it, scored against the
phantom."""

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

# The brain phantom's preview (twin.workflows.ptychotomo.preview_scenario on a 3 µm field) at six
# angles: 6 × 90 frames of 64², one probe mode, no motion-blur sampling.
SMALL_3D = """
name = "tomo_small"
seed = 0
[sample]
phantom = "fibre_bundle"
shape = "cylinder"
diameter_um = 2.4
height_um = 3.0
material = "polycaprolactone"
[sample.fibres]
outer_diameter_um_mean = 1.5
outer_diameter_um_sd = 0.375
inner_diameter_um_mean = 0.75
inner_diameter_um_sd = 0.25
[beam]
energy_kev = 11.0
flux_photons_per_s = 2e8
[optics]
zone_plate_diameter_um = 400.0
outermost_zone_nm = 200.0
beam_diameter_um = 3.5
[scan]
mode = "fly"
fov_x_um = 3.0
fov_y_um = 3.0
fast_step_um = 0.2
slow_step_um = 0.5
frame_rate_hz = 2874.0
exposure_s = 340e-6
line_turnaround_s = 0.1
blur_samples = 1
[detector]
preset = "eiger_500k"
mode = "12bit"
distance_m = 5.1
crop = 64
[tomography]
n_projections = 6
angular_range_deg = 180.0
"""


def twin(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "twin", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The small 3D scenario simulated once from the command line (local cluster)."""
    d = tmp_path_factory.mktemp("exp")
    scn = d / "small.toml"
    scn.write_text(SMALL_3D)
    t0 = time.perf_counter()
    r = twin("simulate", scn, "-o", d / "run" / "exp.h5")
    assert r.returncode == 0, r.stderr
    print(f"simulate: {time.perf_counter() - t0:.1f} s")
    return scn, d / "run" / "exp.h5"


def _cxis(master: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((master.parent / "exp_projections").iterdir())}


def test_master_file_links_each_projection_and_its_angle(small, tmp_path):
    from twin import scenario
    from twin.workflows import simulate

    scn, master = small
    moved = tmp_path / "moved"
    shutil.copytree(master.parent, moved)           # relative links: the folder moves whole
    with h5py.File(moved / "exp.h5", "r") as f:
        e = f["entry_1"]
        # six angles over 180°, the end point (a repeat of 0°) excluded
        assert np.allclose(e["theta"][()], [0, 30, 60, 90, 120, 150])
        for k in range(6):
            link = e.get(f"projection_{k}", getlink=True)
            assert isinstance(link, h5py.ExternalLink)
            assert link.filename == f"exp_projections/projection_{k:05d}.cxi"
            assert link.path == "/entry_1"
            with h5py.File(moved / link.filename, "r") as cxi:
                assert np.array_equal(e[f"projection_{k}/data_1/data"][()],
                                      cxi["entry_1/data_1/data"][()])
    # projection 1 is the scenario simulated on its own at 30° with projection 1's noise
    s = scenario.load(scn)
    simulate.simulate(s, tmp_path / "alone.cxi", angle_deg=30.0, projection=1)
    assert (tmp_path / "alone.cxi").read_bytes() == \
        (master.parent / "exp_projections" / "projection_00001.cxi").read_bytes()
    first = (master.parent / "exp_projections" / "projection_00000.cxi").read_bytes()
    assert first != (tmp_path / "alone.cxi").read_bytes()


def test_a_rerun_of_a_part_keeps_every_finished_projection_linked(small, tmp_path):
    """A run over --projections 1:3 in a folder where all six are finished rewrites the master
    with all six, not only its range (nothing already written is lost from the master)."""
    scn, master = small
    moved = tmp_path / "moved"
    shutil.copytree(master.parent, moved)
    (moved / "exp_projections" / "projection_00004.cxi").unlink()
    r = twin("simulate", scn, "-o", moved / "exp.h5", "--projections", "1:3")
    assert r.returncode == 0, r.stderr
    with h5py.File(moved / "exp.h5", "r") as f:
        e = f["entry_1"]
        assert list(e["projection_index"][()]) == [0, 1, 2, 3, 5]
        assert np.allclose(e["theta"][()], [0, 30, 60, 90, 150])
        for k, i in enumerate([0, 1, 2, 3, 5]):
            link = e.get(f"projection_{k}", getlink=True)
            assert link.filename == f"exp_projections/projection_{i:05d}.cxi"


def test_projections_have_independent_noise(small):
    # the same sample at every angle, each projection its own photon noise: at one angle, the
    # counts of projection k and of the 2D scan at that angle differ by Poisson noise alone,
    # whose variance is the mean (a Skellam difference: var = 2·mean)
    from twin import scenario
    from twin.workflows import simulate

    scn, _ = small
    s = scenario.load(scn)
    p0 = simulate.plan(s, n_frames=64, angle_deg=0.0)
    p3 = simulate.plan(s, n_frames=64, angle_deg=0.0, projection=3)
    a = np.concatenate([c for _, c in simulate.frames(p0)]).astype(float)
    b = np.concatenate([c for _, c in simulate.frames(p3)]).astype(float)
    assert not np.array_equal(a, b)
    bright = (a + b) / 2 > 20
    assert bright.sum() > 1000
    var = np.var(a[bright] - b[bright])
    assert var == pytest.approx(2 * np.mean(a[bright]), rel=0.25)
    # the same projection again: the same bytes
    again = np.concatenate([c for _, c in simulate.frames(simulate.plan(
        s, n_frames=64, angle_deg=0.0, projection=3))])
    assert np.array_equal(again, b)


def test_an_interrupted_run_resumes_keeping_finished_projections(small, tmp_path):
    import signal

    scn, master = small
    shutil.copytree(master.parent, tmp_path / "run")
    copy = tmp_path / "run" / "exp.h5"
    folder = copy.parent / "exp_projections"
    copy.unlink()
    gone = folder / "projection_00002.cxi"
    gone.unlink()
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    # interrupted while it writes the missing projection: client, scheduler and workers killed
    cmd = [sys.executable, "-m", "twin", "simulate", str(scn), "-o", str(copy)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        t0 = time.time()
        while not list(folder.glob(".projection_00002.cxi.*.part")):
            assert proc.poll() is None, "the run ended before it could be interrupted"
            assert time.time() - t0 < 120
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not copy.exists() and not gone.exists()           # nothing partial under a final name
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("projection_*")} == before
    r = twin("simulate", scn, "-o", copy)
    assert r.returncode == 0, r.stderr
    assert "5 finished, 1 to simulate" in r.stderr
    after = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert sorted(after) == sorted([*before, gone.name])      # the dead run's temporary: gone
    assert all(after[k] == v for k, v in before.items())      # finished ones kept, untouched
    assert _cxis(copy) == _cxis(master)                       # the redone one bit-identical
    with h5py.File(copy, "r") as a, h5py.File(master, "r") as b:
        assert np.array_equal(a["entry_1/theta"][()], b["entry_1/theta"][()])


def test_a_killed_worker_leaves_the_bytes_unchanged(small, tmp_path):
    from dask.distributed import LocalCluster

    from twin import scenario
    from twin.workflows import experiment

    scn, master = small
    out = tmp_path / "exp.h5"
    folder = out.parent / "exp_projections"
    killed = []

    def assassin():                 # kill the first worker seen writing a projection, mid-file
        t0 = time.time()
        while time.time() - t0 < 120 and not killed:
            for part in folder.glob(".projection_*.part") if folder.is_dir() else []:
                pid = int(part.name.split(".cxi.")[1].split("@")[0])
                os.kill(pid, 9)
                killed.append(pid)
                return
            time.sleep(0.01)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=50) as cluster:
        th = threading.Thread(target=assassin, daemon=True)
        th.start()
        experiment.simulate_experiment(scenario.load(scn), out, projections="0:2",
                                       scheduler=cluster.scheduler_address, log=lambda m: None)
        th.join()
    assert killed, "no worker was killed during the run"
    names = [f"projection_{k:05d}.cxi" for k in range(2)]
    assert sorted(p.name for p in folder.iterdir()) == names      # the dead writer's temp: gone
    clean = _cxis(master)
    assert all((folder / n).read_bytes() == clean[n] for n in names)
    with h5py.File(out, "r") as f:
        assert np.allclose(f["entry_1/theta"][()], [0, 30])
        assert list(f["entry_1/projection_index"][()]) == [0, 1]


@pytest.fixture(scope="module")
def stack(small, tmp_path_factory):
    """The small experiment reconstructed from the command line into a Data Exchange stack."""
    _, master = small
    out = tmp_path_factory.mktemp("stack") / "stack.h5"
    t0 = time.perf_counter()
    r = twin("reconstruct", master, "-o", out, "--algorithm", "rpie", "--iterations", "15",
             "--modes", "1", "--position-correction", "none")
    assert r.returncode == 0, r.stderr
    print(f"reconstruct: {time.perf_counter() - t0:.1f} s")
    return out


def test_the_stack_has_the_phantoms_geometry(small, stack):
    """The stack's truth rows are k∫δ dz of the phantom, computed here by voxelising the fibre
    bundle and projecting it with scikit-image's radon: CONTRACTS §5's axis, angles and units."""
    from skimage.transform import radon

    from twin import scenario
    from twin.core.constants import HC_KEV_M
    from twin.sample import phantoms

    s = scenario.load(small[0])
    with h5py.File(stack, "r") as f:
        truth = f["twin/truth_data"][()]
        theta = f["exchange/theta"][()]
        dx = float(f["exchange/data"].attrs["voxel_size_m"])
    fb = s.sample.fibres
    # the middle row (height ≈ 0) voxelised 4× finer than the stack, projected by skimage's
    # radon and averaged back onto the stack's columns (axis at column cols // 2)
    n_fine = 4 * truth.shape[-1]
    bundle = phantoms.FibreBundle(
        shape=(1, n_fine, n_fine), voxel_size_m=dx / 4, sample_diameter_m=s.sample.diameter_um * 1e-6,
        seed=s.seed, fibre_material=fb.fibre_material, matrix_material=fb.matrix_material,
        outer_diameter_m=(fb.outer_diameter_um_mean * 1e-6, fb.outer_diameter_um_sd * 1e-6),
        inner_diameter_m=(fb.inner_diameter_um_mean * 1e-6, fb.inner_diameter_um_sd * 1e-6),
        dispersion_deg=fb.orientation_dispersion_deg, packing_fraction=fb.packing_fraction)
    delta = bundle.index_volume(s.beam.energy_kev, rows=[0])[0].real
    k = 2 * np.pi / (HC_KEV_M / s.beam.energy_kev)
    phantom = (radon(delta, theta, circle=True).T * (dx / 4) * k).reshape(len(theta), -1, 4)
    phantom = phantom.mean(axis=2)                                   # (angles, cols)
    row = truth[:, truth.shape[1] // 2]

    def misfit(a):
        return float(np.linalg.norm(a - phantom) / np.linalg.norm(phantom))

    one_off = misfit(np.roll(row, 1, axis=-1))
    print(f"truth rows vs the phantom: misfit {misfit(row):.3f} (one column off: {one_off:.3f})"
          f", amplitude {np.sum(row * phantom) / np.sum(phantom ** 2):.3f}")
    assert misfit(row) < 0.1 < one_off


def test_chain_from_the_command_line_scores_against_the_phantom(stack, tmp_path):
    from twin.analysis import metrics
    from twin.tomo import reconstruct as tm

    t1 = time.perf_counter()
    r = twin("tomo", stack, "-o", tmp_path / "vol.h5", "--algorithm", "fbp")
    assert r.returncode == 0, r.stderr
    print(f"tomo: {time.perf_counter() - t1:.1f} s")
    with h5py.File(stack, "r") as f:
        theta = f["exchange/theta"][()]
        assert f["exchange/data"].dtype == np.float32 and f["exchange/data"].shape[0] == 6
        truth = f["twin/truth_data"][()]
        dx = f["exchange/data"].attrs["voxel_size_m"]
    assert np.allclose(theta, [0, 30, 60, 90, 120, 150])
    with h5py.File(tmp_path / "vol.h5", "r") as f:
        vol = f["volume"][()]
    # the phantom's own projections (the files' ground truth), through the same tomography
    ref = tm.fbp(truth, theta, "ramp")
    n = vol.shape[-1]
    yy, xx = np.mgrid[:n, :n] - n // 2
    disc = xx ** 2 + yy ** 2 < (0.45 * n) ** 2

    def scores(v):
        fsc = metrics.fourier_correlation(v * disc, ref * disc, dx)
        return metrics.pcc(v[:, disc], ref[:, disc]), fsc.resolution_m()

    pcc, res = scores(vol)
    # an unrelated volume of the same power spectrum (random Fourier phases) fails both floors
    spec = np.fft.fftn(ref)
    rng = np.random.default_rng(0)
    other = np.real(np.fft.ifftn(np.abs(spec) * np.exp(2j * np.pi * rng.random(spec.shape))))
    pcc_other, res_other = scores(other)
    print(f"volume: PCC {pcc:.3f}, FSC half-bit {res * 1e9:.0f} nm (unrelated: PCC "
          f"{pcc_other:.3f}, {res_other * 1e9:.0f} nm); voxel {dx * 1e9:.0f} nm")
    assert pcc > 0.6 and pcc_other < 0.3
    assert res < 3 * dx < res_other


@pytest.mark.parametrize("case", ["range", "range_empty", "range_2d", "missing", "cxi_stack",
                                  "stale", "scheduler"])
def test_bad_input_exits_2_naming_it(small, tmp_path, case, scenario_path, monkeypatch):
    from typer.testing import CliRunner

    from twin.cli import app

    scn, master = small
    if case == "range":
        args, needle = ("simulate", scn, "-o", tmp_path / "x.h5", "--projections", "4:9"), "4:9"
    elif case == "range_empty":
        args, needle = ("simulate", scn, "-o", tmp_path / "x.h5", "--projections", "3:3"), "3:3"
    elif case == "stale":                 # another seed over finished projections: not mixed
        shutil.copytree(master.parent, tmp_path / "run")
        (tmp_path / "run" / "exp.h5").unlink()
        args, needle = (("simulate", scn, "-o", tmp_path / "run" / "exp.h5", "--seed", "7"),
                        "projection_00000.cxi")
    elif case == "cxi_stack":
        args, needle = ("reconstruct", master, "-o", tmp_path / "x.cxi"), "x.cxi"
    elif case == "range_2d":
        args, needle = ("simulate", scenario_path("quickstart"), "-o", tmp_path / "x.cxi",
                        "--projections", "0:2"), "--projections"
    elif case == "missing":
        shutil.copytree(master.parent, tmp_path / "run")
        (tmp_path / "run" / "exp_projections" / "projection_00004.cxi").unlink()
        args, needle = (("reconstruct", tmp_path / "run" / "exp.h5", "-o", tmp_path / "s.h5"),
                        "/entry_1/projection_4")
    else:
        monkeypatch.setenv("TWIN_DASK_CONNECT_TIMEOUT_S", "2")
        args, needle = (("simulate", scn, "-o", tmp_path / "x.h5", "--scheduler",
                         "tcp://127.0.0.1:9"), "tcp://127.0.0.1:9")
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == 2, r.output
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "s.h5").exists()
    assert not (tmp_path / "x.cxi").exists()
    assert case != "stale" or not (tmp_path / "run" / "exp.h5").exists()


@pytest.mark.parametrize("spec", [":", "2:", ":4", "1:5:2", "-3:", "-6:-1", "::-1", "5:0:-2",
                                  "0:6"])
def test_projection_ranges_are_python_slices(spec):
    from twin.workflows.experiment import select_projections

    expected = list(range(6))[slice(*[int(p) if p else None for p in spec.split(":")])]
    assert list(select_projections(spec, 6)) == expected


@pytest.mark.parametrize("spec", ["0:7", "-7:", "3:3", "4:1", "a:b", "2", "::0"])
def test_projection_ranges_outside_the_scenario_are_refused(spec):
    from twin.core.errors import TwinInputError
    from twin.workflows.experiment import select_projections

    with pytest.raises(TwinInputError, match="--projections"):
        select_projections(spec, 6)
