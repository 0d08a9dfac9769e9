"""Simulation speed against its FFT limit and against the old code path, in one run (issue 22).

For each scenario it prints

* the transforms the model must do per frame: modes × blur samples × (1 + 2 × propagations)
  FFTs of N² (the fine window), and those FFTs timed alone (``scipy.fft.fft2`` of the modes'
  batch with every core): the **FFT limit** in frames/s;
* the simulation's frames/s (:func:`twin.workflows.simulate.frames`: exit waves, far fields,
  binning, motion blur and the detector's counting) and its ratio to the limit (issue 22's
  target on the CPU: ≥ 50 %);
* the same frames through the code before issue 22: the whole ``twin/`` package and scenario
  file of commit e9bdb9f, extracted from git into a temporary folder and run in a child process
  (the package has been split since, so its ``simulate.py`` cannot run on today's modules),
  measured in the same run, and the speed-up.

Each measurement is repeated (``--repeat``), alternating old and new, and the best of each is
kept: the machine is shared, so only ratios within one run mean much.

``python benchmarks/bench_simulate.py [--frames N] [--brain-frames N] [--repeat R]
[--no-old] [--full] [--oversampling S]`` (``--full``: also the whole ``simulate()`` to a CXI
file, and peak RSS; ``--oversampling 1``: the reconstruction-grid simulation of issue 10).
It also prints the bare forward model's frames/s against the simulation with the detector
(issue 4: ≥ 0.5).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from twin import scenario
from twin.core.xp import fft2, get_xp
from twin.workflows import simulate

ROOT = Path(__file__).resolve().parents[1]
OLD_COMMIT = "e9bdb9f"


OLD_CHILD = """
import json, sys, time
from twin import scenario
from twin.workflows import simulate
name, n, reps, ovs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = scenario.load(f"scenarios/{name}.toml")
if ovs != "none":
    s = s.with_values({"simulation.oversampling": int(ovs)})
p = simulate.plan(s, n)
simulate.expected_frames(p, 0, 2)
best = 0.0
for _ in range(reps):
    t0 = time.perf_counter()
    k = sum(len(c) for _, c in simulate.frames(p))
    best = max(best, k / (time.perf_counter() - t0))
print(json.dumps({"fps": best, "frames": p.n_frames, "window": p.n_window,
                  "modes": p.fine_probes.shape[1], "blur": p.blur_samples,
                  "slices": p.fine_slices.shape[0]}))
"""


class OldCode:
    """The code of :data:`OLD_COMMIT` (``twin/`` and ``scenarios/``), extracted from git into a
    temporary folder; :meth:`measure` runs its simulation in a child process."""

    def __init__(self, folder: Path):
        self.folder = folder

    @classmethod
    def extract(cls) -> "OldCode | None":
        """The old tree, or None without git (or without the commit)."""
        import atexit
        import shutil

        folder = Path(tempfile.mkdtemp(prefix="twin-old-"))
        atexit.register(shutil.rmtree, folder, True)
        try:
            tar = subprocess.run(["git", "archive", OLD_COMMIT, "twin", "scenarios"], cwd=ROOT,
                                 capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(folder)], input=tar, check=True)
        except (OSError, subprocess.CalledProcessError):
            return None
        return cls(folder)

    def measure(self, name: str, n_frames: int, reps: int, oversampling: int | None) -> dict:
        """Frames/s (best of ``reps``) of the old simulation of ``n_frames`` of scenario
        ``name`` (the old commit's own scenario file), with its window, modes, blur samples
        and slices."""
        import json
        import os

        env = dict(os.environ, PYTHONPATH=str(self.folder))
        out = subprocess.run([sys.executable, "-c", OLD_CHILD, name, str(n_frames), str(reps),
                              str(oversampling) if oversampling else "none"],
                             cwd=self.folder, env=env, capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"the code of {OLD_COMMIT} failed:\n{out.stderr[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def transforms(p) -> tuple[int, int]:
    """(N² FFTs per frame: modes × blur samples × beams × (1 + 2 × propagations), batches of
    the modes' FFTs per frame)."""
    props = p.fine_slices.shape[0] - 1
    batches = p.blur_samples * p.beam_offsets_m.shape[0] * (1 + 2 * props)
    return p.fine_probes.shape[1] * batches, batches


def fft_limit(p, xp, n_frames: int) -> float:
    """Frames/s if the simulation of ``n_frames`` did nothing but its FFTs: that many frames'
    transforms (``fft2`` of the modes' batch, every core), timed alone."""
    m, N = p.fine_probes.shape[1], p.n_window
    _, batches = transforms(p)
    a = xp.asarray((np.random.default_rng(0).standard_normal((m, N, N, 2)) @ [1, 1j])
                   .astype(np.complex64))
    a = fft2(a, overwrite_x=True)
    t0 = time.perf_counter()
    for _ in range(n_frames * batches):
        a = fft2(a, overwrite_x=True)
    if xp is not np:
        xp.cuda.Device().synchronize()
    return n_frames / (time.perf_counter() - t0)


def frames_per_s(mod, p) -> float:
    t0 = time.perf_counter()
    n = 0
    for _, counts in mod.frames(p):
        n += len(counts)
    return n / (time.perf_counter() - t0)


def bench(name: str, n_frames: int, repeat: int, old, oversampling: int | None = None) -> None:
    s = scenario.load(ROOT / "scenarios" / f"{name}.toml")
    if oversampling is not None:
        s = s.with_values({"simulation.oversampling": oversampling})
    p = simulate.plan(s, n_frames)
    xp = get_xp(p.backend)
    simulate.expected_frames(p, 0, 2)                 # compile the kernels, fill caches
    count, _ = transforms(p)
    # interleaved, best of each: the FFTs alone, the simulation, the old code
    limit, new_fps, old_fps, old_run = 0.0, 0.0, 0.0, None
    for _ in range(repeat):
        limit = max(limit, fft_limit(p, xp, p.n_frames))
        new_fps = max(new_fps, frames_per_s(simulate, p))
        if old is not None:
            old_run = old.measure(name, n_frames, 1, oversampling)
            old_fps = max(old_fps, old_run["fps"])
    m, N = p.fine_probes.shape[1], p.n_window
    print(f"{name}: {p.n_frames} frames, window {N}² (oversampling {p.oversampling}), "
          f"{m} modes, {p.blur_samples} blur samples, {p.fine_slices.shape[0]} slices, "
          f"{p.beam_offsets_m.shape[0]} beams, backend {xp.__name__}, best of {repeat}")
    print(f"  transforms per frame: {count} FFTs of {N}²; FFT limit {limit:.1f} frames/s")
    print(f"  simulation: {new_fps:.1f} frames/s = {100 * new_fps / limit:.0f} % of the FFT "
          f"limit (target ≥ 50 % on the CPU)")
    if old_run is not None:
        same = (old_run["frames"], old_run["window"], old_run["modes"], old_run["blur"],
                old_run["slices"]) == (p.n_frames, N, m, p.blur_samples, p.fine_slices.shape[0])
        print(f"  before issue 22 ({OLD_COMMIT}, its own scenario file): {old_fps:.1f} "
              f"frames/s = {100 * old_fps / limit:.0f} % of the limit; speed-up "
              f"{new_fps / old_fps:.2f}×" + ("" if same else
              f" (NOT the same work: old {old_run['frames']} frames, window "
              f"{old_run['window']}², {old_run['modes']} modes, {old_run['blur']} blur samples, "
              f"{old_run['slices']} slices)"))
    t0 = time.perf_counter()
    simulate.expected_frames(p, 0, p.n_frames)
    bare = p.n_frames / (time.perf_counter() - t0)
    print(f"  bare forward model (no detector) {bare:.1f} frames/s; with the detector "
          f"{new_fps / bare:.2f} of that (issue 4: ≥ 0.5)")
    if name.startswith("siemens_star") and oversampling is None:
        total = 56_000
        print(f"  the star's full scan ({total:,} frames) at this rate: "
              f"{total / new_fps / 60:.1f} min (issue 22: 22 min 38 s before; target ≤ 9 min)")
    sys.stdout.flush()


def full_run(name: str, n_frames: int) -> None:
    s = scenario.load(ROOT / "scenarios" / f"{name}.toml")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.cxi"
        t0 = time.perf_counter()
        summary = simulate.simulate(s, out, n_frames=n_frames)
        dt = time.perf_counter() - t0
        size = out.stat().st_size
    print(f"{name}: simulate() of {summary.n_frames} frames to CXI in {dt:.1f} s "
          f"({summary.n_frames / dt:.1f} frames/s, plan and writing included), file "
          f"{size / 1e6:.1f} MB, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1024, help="star frames per measurement")
    ap.add_argument("--brain-frames", type=int, default=48)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-old", action="store_true", help="skip the pre-issue-22 code path")
    ap.add_argument("--full", action="store_true", help="also simulate() to a file")
    ap.add_argument("--oversampling", type=int, default=None,
                    help="override simulation.oversampling (1: the reconstruction's grid)")
    a = ap.parse_args(argv)
    old = None if a.no_old else OldCode.extract()
    if old is None and not a.no_old:
        print(f"(no git: the code of {OLD_COMMIT} is not measured)")
    bench("siemens_star_selun_110khz", a.frames, a.repeat, old, a.oversampling)
    if a.brain_frames:
        bench("brain_phantom_eiger_3khz", a.brain_frames, a.repeat, old, a.oversampling)
    if a.full:
        full_run("siemens_star_selun_110khz", a.frames)


if __name__ == "__main__":
    main()
