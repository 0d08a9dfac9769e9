"""Reconstruction speed: time per stage, frame-iterations per second, the share of the FFT limit
and (where it can run) the ratio against pty-chi — all measured in one run.

    python benchmarks/bench_recon.py [--frames 517] [--iterations 20]
                                     [--ptychi-python PATH] [--gpu-only]
                                     [--multibeam-only]

* **FFT limit**: the time of the two FFTs every frame and iteration needs at the least (the
  far-field transform and its inverse, of all probe modes), timed here on the engine's batch
  shape with the same FFT library and workers. ``share`` = achieved / limit frame-iterations/s.
* **pty-chi**: run in a subprocess (``benchmarks/ptychi_runner.py``) with ``--ptychi-python``, or
  with this interpreter when ``ptychi`` imports; skipped with a note otherwise. Both codes start
  from the file's illumination and positions, same iterations and batch size.
* **Multibeam**: 3 coded beams per frame against one beam scanning the same 3 bands alone (the
  same windows and FFTs), in memory and streamed: what the beams' bookkeeping costs.
* **GPU**: where CuPy sees a GPU, frame-iterations/s at 64² and 128² with 1 and 4 modes on
  synthetic data (issue 11: ≥ 150,000 at 128², 4 modes on an H100), and pty-chi on the same GPU
  when it is importable there.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from twin.core.xp import fft2, get_xp, gpu_available, ifft2
import twin.recon as engines

ROOT = Path(__file__).resolve().parents[1]


def _sync(xp) -> None:
    if xp is not np:
        xp.cuda.Device().synchronize()


def fft_limit(xp, batch: int, modes: int, n: int, repeat: int = 5) -> float:
    """Frame-iterations/s if each frame and iteration cost one forward and one inverse FFT of
    its ``modes`` (n × n) complex64 waves and nothing else."""
    a = xp.asarray((np.random.default_rng(0).standard_normal((batch, modes, n, n)) + 0j
                    ).astype(np.complex64))
    ifft2(fft2(a))
    best = np.inf
    for _ in range(repeat):
        _sync(xp)
        t0 = time.perf_counter()
        for _ in range(4):
            ifft2(fft2(a))
        _sync(xp)
        best = min(best, (time.perf_counter() - t0) / 4)
    return batch / best


def simulate_data(frames: int, tmp: Path):
    from twin import scenario
    from twin.io.cxi import read_cxi
    from twin.workflows import simulate

    s = scenario.load(ROOT / "scenarios" / "quickstart.toml")
    side = float(np.sqrt(frames) * 0.3)
    s = s.with_values({"scan.fov_x_um": side, "scan.fov_y_um": side, "sample.width_um": side,
                       "sample.height_um": side})
    cxi = tmp / "bench.cxi"
    t0 = time.perf_counter()
    simulate.simulate(s, cxi)
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = read_cxi(cxi)
    return cxi, data, t_sim, time.perf_counter() - t0


def realistic_data(frames: int, tmp: Path, modes: int = 3, position_error_px: float = 3.0,
                   model_error: float = 0.25, photons_per_frame: float = 2e4, seed: int = 1,
                   name: str = "realistic.cxi"):
    """Data as hard as a measurement (issue 11 §1): ``twin simulate``'s default physics (object
    finer than the pixel, pixel-integrated far field, detector response) on the quickstart star
    enlarged to ``frames`` points, with ``modes`` incoherent probe modes (coherent fraction 0.6),
    encoder noise of ``position_error_px`` object pixels rms per axis, ``photons_per_frame``,
    and a file ``illumination`` whose defocus is ``model_error`` off the true one (the beam in
    the model is that much too large)."""
    import h5py

    from twin import scenario
    from twin.beam import probe
    from twin.geometry import Geometry
    from twin.workflows import simulate

    s = scenario.load(ROOT / "scenarios" / "quickstart.toml")
    side = float(np.sqrt(frames) * 0.3)
    g0 = Geometry.from_scenario(s)
    dx = g0.wavelength_m * g0.distance_m / (64 * g0.pixel_stored_m)
    s = s.with_values({"scan.fov_x_um": side, "scan.fov_y_um": side, "sample.width_um": side,
                       "sample.height_um": side, "seed": seed,
                       "beam.flux_photons_per_s": photons_per_frame / g0.exposure_s,
                       "beam.coherent_fraction": 0.6 if modes > 1 else 1.0,
                       "beam.coherent_modes": modes,
                       "scan.encoder_noise_nm": position_error_px * dx * 1e9})
    cxi = tmp / name
    simulate.simulate(s, cxi)
    g = Geometry.from_scenario(s)
    zp = probe.ZonePlate(g.zone_plate_diameter_m, g.outermost_zone_m, g.central_stop_m)
    with h5py.File(cxi, "r+") as f:
        ds = f["entry_1/instrument_1/source_1/illumination"]
        n = ds.shape[-1]
        model = probe.zone_plate_probe(n, dx, zp, g.wavelength_m,
                                       g.defocus_m * (1 + model_error))
        ds[...] = (model * np.sqrt(g.photons_per_frame))[None].astype(np.complex64)
    return cxi


def _pcc(obj, data) -> float:
    from twin.analysis import truth as validate

    if data.ground_truth is None:
        return float("nan")
    return validate.compare(obj, data.ground_truth, data.object_pixel_m, data.translations_m,
                            data.frames.shape[-1]).pcc_phase


CPU_CASES = [
    ("rpie", {"algorithm": "rpie"}),
    ("epie", {"algorithm": "epie"}),
    ("lsqml", {"algorithm": "lsqml"}),
    ("rpie 3 modes", {"algorithm": "rpie", "modes": 3}),
    ("rpie + pos. grad.", {"algorithm": "rpie", "position_correction": "gradient",
                           "position_correction_start": 2}),
    ("multislice ×2", {"algorithm": "multislice", "slices": 2, "slice_thickness_m": 0.5e-6}),
]


def run_cases(data, iterations: int, batch: int, backend: str, xp) -> dict:
    """Each of :data:`CPU_CASES` on ``backend``: a short run first (compiles the CPU kernels,
    warms the GPU's), then the timed one. Prints one row per case; returns
    {case: (seconds of iterations, frame-it/s, result)}."""
    n = data.frames.shape[-1] * data.upsampling
    n_frames = len(data.frames)
    print(f"{'case':18} {'setup s':>8} {'iter s':>8} {'frame-it/s':>11} {'FFT limit':>10} "
          f"{'share':>6} {'PCC':>7}")
    limits: dict[int, float] = {}
    out = {}
    for name, kw in CPU_CASES:
        try:
            opts = engines.Options(iterations=iterations, batch_size=batch, backend=backend,
                                   **kw)
            engines.reconstruct(data, engines.Options(batch_size=batch, backend=backend,
                                                      **{**kw, "iterations": 3}))
            t0 = time.perf_counter()
            r = engines.reconstruct(data, opts)
            total = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 - report and go on with the others
            print(f"{name:18} failed: {exc!r}")
            continue
        t_it = r.timings.get("seconds", total)
        rate = n_frames * len(r.cost) / t_it
        m = opts.modes
        if m not in limits:
            limits[m] = fft_limit(xp, batch, m, n)
        out[name] = (t_it, rate, r)
        print(f"{name:18} {total - t_it:8.2f} {t_it:8.2f} {rate:11.0f} {limits[m]:10.0f} "
              f"{rate / limits[m]:6.1%} {_pcc(r.object, data):7.4f}")
    return out


def cpu_section(data, iterations: int, batch: int) -> dict:
    print(f"\nCPU: {len(data.frames)} frames of {data.frames.shape[-1]}², {iterations} "
          f"iterations, batch {batch}")
    return run_cases(data, iterations, batch, "numpy", np)


def ptychi_section(cxi: Path, data, iterations: int, batch: int, python: str | None,
                   twin_runs: dict) -> None:
    if python is None:
        if importlib.util.find_spec("ptychi") is None:
            print("\npty-chi: not importable here and no --ptychi-python given: skipped")
            return
        python = sys.executable
    print(f"\npty-chi ({python}), same data, {iterations} iterations, batch {batch}")
    with tempfile.TemporaryDirectory() as tmp:
        for alg in ("rpie", "lsqml"):
            npz = Path(tmp) / f"{alg}.npz"
            t0 = time.perf_counter()
            r = subprocess.run([python, str(ROOT / "benchmarks" / "ptychi_runner.py"), str(cxi),
                                str(npz), alg, str(iterations), str(batch)],
                               capture_output=True, text=True)
            t_proc = time.perf_counter() - t0
            if r.returncode != 0:
                print(f"{alg:6} pty-chi failed: {r.stderr.strip().splitlines()[-1:]}")
                continue
            z = np.load(npz)
            t_pc = float(z["seconds_recon"])
            t_tw, _, rec = twin_runs[alg]
            t0 = time.perf_counter()
            w = subprocess.run([sys.executable, "-c",
                                "import sys; from twin.io.cxi import read_cxi; "
                                "import twin.recon as e; "
                                "e.reconstruct(read_cxi(sys.argv[1]), e.Options("
                                f"algorithm='{alg}', iterations={iterations}, "
                                f"batch_size={batch}, backend='numpy'))", str(cxi)],
                               capture_output=True, text=True)
            t_tw_proc = time.perf_counter() - t0
            if w.returncode != 0:
                t_tw_proc = float("nan")
            print(f"{alg:6} pty-chi: recon {t_pc:6.2f} s, process {t_proc:6.2f} s, "
                  f"PCC {_pcc(z['object'], data):.4f}")
            print(f"{alg:6} twin:    recon {t_tw:6.2f} s, process {t_tw_proc:6.2f} s, "
                  f"PCC {_pcc(rec.object, data):.4f}")
            print(f"{alg:6} twin / pty-chi speed: recon {t_pc / t_tw:5.2f}x, "
                  f"whole process {t_proc / t_tw_proc:5.2f}x")


def synthetic(n: int, modes: int, frames: int):
    """A PtychoData of a random phase object on a raster, frames from the operator itself."""
    from twin.io.datamodel import PtychoData
    from twin.operators import ptychography

    rng = np.random.default_rng(1)
    side = int(np.ceil(np.sqrt(frames)))
    step = n / 8
    yy, xx = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    t = np.stack([xx.ravel(), yy.ravel()], 1)[:frames] * step
    t = t - t.mean(axis=0) + rng.uniform(-0.3, 0.3, t.shape)
    dx = 10e-9
    shape = (int(side * step + n + 16),) * 2
    pos = ptychography.positions_from_translations(t * dx, dx, shape, (n, n))
    yy, xx = (np.mgrid[:n, :n] - n / 2) / (n / 6)
    probe = np.stack([np.exp(-(xx ** 2 + yy ** 2) + 1j * k * xx) for k in range(modes)]
                     ).astype(np.complex64) * 30
    obj = np.exp(1j * rng.uniform(0, 1, shape)).astype(np.complex64)
    frames_ = ptychography.FarFieldPtychography(probe, pos, shape).intensity(obj)
    lam, z = 1.5e-10, 2.0
    pix = lam * z / (n * dx)
    tr = np.concatenate([t * dx, np.zeros((len(t), 1))], axis=1)
    energy_kev = 12.398419843320026e-10 / lam          # hc/λ in keV with λ in metres
    return PtychoData(np.asarray(frames_), tr, z, pix, energy_kev, probe)


def gpu_section(iterations: int, data=None, cxi: Path | None = None, batch: int = 64,
                ptychi_python: str | None = None) -> None:
    """The CPU section's cases on the GPU (same data, same batch, PCC), pty-chi on the same GPU
    where it imports, and throughput at larger sizes on synthetic data."""
    if not gpu_available():
        print("\nGPU: no CuPy GPU here: section skipped")
        return
    cp = get_xp("cupy")
    name = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    runs = {}
    if data is not None:
        print(f"\nGPU ({name}), CuPy: {len(data.frames)} frames of {data.frames.shape[-1]}², "
              f"{iterations} iterations, batch {batch}")
        runs = run_cases(data, iterations, batch, "cupy", cp)
    if cxi is not None and runs:
        python = ptychi_python or (sys.executable if importlib.util.find_spec("ptychi")
                                   else None)
        if python is None:
            print("\npty-chi: not importable here: GPU comparison skipped")
        else:
            print(f"\npty-chi on the same GPU, same data, {iterations} iterations, batch {batch}")
            with tempfile.TemporaryDirectory() as tmp:
                for alg in ("rpie", "lsqml"):
                    npz = Path(tmp) / f"{alg}.npz"
                    r = subprocess.run([python, str(ROOT / "benchmarks" / "ptychi_runner.py"),
                                        str(cxi), str(npz), alg, str(iterations), str(batch),
                                        "cuda"], capture_output=True, text=True)
                    if r.returncode != 0 or alg not in runs:
                        print(f"{alg:6} pty-chi failed: {r.stderr.strip().splitlines()[-3:]}")
                        continue
                    z = np.load(npz)
                    t_pc = float(z["seconds_recon"])
                    t_tw, _, rec = runs[alg]
                    print(f"{alg:6} pty-chi: recon {t_pc:6.2f} s, PCC {_pcc(z['object'], data):.4f}"
                          f" | twin: recon {t_tw:6.2f} s, PCC {_pcc(rec.object, data):.4f}"
                          f" | twin / pty-chi speed {t_pc / t_tw:5.2f}x")
    print(f"\nGPU ({name}), synthetic data, {iterations} iterations")
    print(f"{'size':>5} {'modes':>5} {'batch':>6} {'frame-it/s':>11} {'FFT limit':>10} "
          f"{'share':>6}")
    for n, modes, frames, bsz in ((64, 1, 4096, 512), (64, 4, 4096, 512),
                                  (128, 1, 2048, 256), (128, 4, 2048, 256)):
        data_s = synthetic(n, modes, frames)
        opts = engines.Options(algorithm="rpie", iterations=iterations, modes=modes,
                               batch_size=bsz, backend="cupy")
        engines.reconstruct(data_s, engines.Options(algorithm="rpie", iterations=1,
                                                    modes=modes, batch_size=bsz,
                                                    backend="cupy"))
        r = engines.reconstruct(data_s, opts)
        rate = frames * len(r.cost) / r.timings["seconds"]
        lim = fft_limit(cp, bsz, modes, n)
        print(f"{n:5d} {modes:5d} {bsz:6d} {rate:11.0f} {lim:10.0f} {rate / lim:6.1%}")


def multibeam_section(iterations: int, batch: int, tmp: Path, beams: int = 3) -> None:
    """Several coded beams per frame against one beam scanning the same bands alone: the same
    windows (frames × beams) and FFTs, so the ratio of window-iterations/s is what the multibeam
    bookkeeping costs (the beams' waves in one modulus constraint, each beam its own probe and,
    in streamed batches, its own sub-rectangle)."""
    from twin import scenario
    from twin.analysis import truth
    from twin.io.cxi import read_cxi
    from twin.workflows import simulate

    base = scenario.load(ROOT / "scenarios" / "quickstart.toml").with_values({
        "scan.fov_y_um": 6.0 * beams, "sample.height_um": 6.0 * beams})
    files = {}
    for b in (1, beams):
        files[b] = tmp / f"beams{b}.cxi"
        simulate.simulate(base.with_values({"scan.n_beams": b,
                                            "beam.flux_photons_per_s": 1e9 * b}), files[b])
    print(f"\nmultibeam: {beams} beams against one beam over the same {beams} bands, "
          f"{iterations} iterations, batch {batch}")
    print(f"{'case':26} {'frames':>7} {'iter s':>8} {'window-it/s':>12} {'PCC':>7}")
    rates = {}
    for name, b, lazy in (("one beam (reference)", 1, False), (f"{beams} beams", beams, False),
                          (f"{beams} beams, streamed", beams, True)):
        d = read_cxi(files[b], lazy=lazy)
        opts = engines.Options(algorithm="rpie", iterations=iterations, batch_size=batch,
                               modes=1)
        engines.reconstruct(d, engines.Options(algorithm="rpie", iterations=2, modes=1))
        r = engines.reconstruct(d, opts)
        lit = truth.lit_positions(d.truth.translations_m, d.beam_offsets_m)
        pcc = truth.compare(r.object, d.truth.object, r.pixel_size_m, lit,
                            r.probe.shape[-1]).pcc_phase
        rates[name] = r.timings["frame_iterations_per_s"] * d.n_beams
        print(f"{name:26} {len(d.frames):7d} {r.timings['seconds']:8.2f} {rates[name]:12.0f} "
              f"{pcc:7.4f}")
    ref = rates["one beam (reference)"]
    for name, rate in list(rates.items())[1:]:
        print(f"  {name}: {rate / ref:.2f}× the single beam's window-iterations/s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=517)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--ptychi-python", default=None)
    ap.add_argument("--gpu-only", action="store_true")
    ap.add_argument("--multibeam-only", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.multibeam_only:
            multibeam_section(args.iterations, args.batch_size, Path(tmp))
            return
        cxi, data, t_sim, t_read = simulate_data(args.frames, Path(tmp))
        print(f"stages: simulate {t_sim:.2f} s, read {t_read:.2f} s")
        if not args.gpu_only:
            runs = cpu_section(data, args.iterations, args.batch_size)
            ptychi_section(cxi, data, args.iterations, args.batch_size, args.ptychi_python,
                           runs)
            multibeam_section(args.iterations, args.batch_size, Path(tmp))
        gpu_section(args.iterations, data, cxi, args.batch_size,
                    args.ptychi_python if args.gpu_only else None)


if __name__ == "__main__":
    main()
