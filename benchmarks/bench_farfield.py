"""Far-field frames per second (issue 3 target: ≥ 20,000 frames/s of 64×64 on 2 CPU cores;
≥ 1,000,000 frames/s on a GPU).

Run by hand: ``python benchmarks/bench_farfield.py``. For each frame size and mode count it
times twin's batched operator (``FarFieldPtychography.intensity``) and, as the baseline in the
same run, a plain per-frame loop of ``numpy.fft.fft2`` doing the same arithmetic.
"""

from __future__ import annotations

import time

import numpy as np

from twin.operators import ptychography
from twin.core.xp import get_xp, gpu_available, to_numpy


def bench(xp, n: int, modes: int, n_frames: int, repeat: int = 3):
    rng = np.random.default_rng(0)
    probe = xp.asarray((rng.standard_normal((modes, n, n))
                        + 1j * rng.standard_normal((modes, n, n))).astype(np.complex64))
    side = int(np.ceil(np.sqrt(n_frames)))
    pos = np.stack(np.meshgrid(np.arange(side) * 2.0, np.arange(side) * 2.0),
                   -1).reshape(-1, 2)[:n_frames]
    shape = (int(pos[:, 0].max()) + n + 1, int(pos[:, 1].max()) + n + 1)
    obj = xp.asarray(np.exp(1j * rng.uniform(0, 1, shape)).astype(np.complex64))
    op = ptychography.FarFieldPtychography(probe, pos, shape)
    op.intensity(obj)
    best = np.inf
    for _ in range(repeat):
        if xp is not np:
            xp.cuda.Device().synchronize()
        t0 = time.perf_counter()
        frames = op.intensity(obj)
        if xp is not np:
            xp.cuda.Device().synchronize()
        best = min(best, time.perf_counter() - t0)
    return n_frames / best, to_numpy(frames[:1])


def baseline(n: int, modes: int, n_frames: int):
    rng = np.random.default_rng(0)
    probe = (rng.standard_normal((modes, n, n)) + 1j * rng.standard_normal((modes, n, n))
             ).astype(np.complex64)
    obj = np.exp(1j * rng.uniform(0, 1, (n + 2 * n_frames, n + 2))).astype(np.complex64)
    t0 = time.perf_counter()
    for k in range(n_frames):
        patch = obj[2 * k:2 * k + n, :n]
        frame = np.zeros((n, n), np.float32)
        for m in range(modes):
            f = np.fft.fftshift(np.fft.fft2(probe[m] * patch, norm="ortho"))
            frame += np.abs(f) ** 2
    return n_frames / (time.perf_counter() - t0)


def main() -> None:
    print(f"{'backend':8} {'size':>5} {'modes':>5} {'frames/s':>12} {'baseline/s':>12} "
          f"{'ratio':>7}")
    for n, modes, count in ((64, 1, 8192), (64, 4, 4096), (128, 1, 2048), (128, 4, 1024)):
        rate, _ = bench(np, n, modes, count)
        base = baseline(n, modes, min(count, 1000))
        print(f"{'numpy':8} {n:5d} {modes:5d} {rate:12.0f} {base:12.0f} {rate / base:7.2f}")
        if gpu_available():
            cp = get_xp("cupy")
            rate_gpu, _ = bench(cp, n, modes, count * 16, repeat=5)
            print(f"{'cupy':8} {n:5d} {modes:5d} {rate_gpu:12.0f} {base:12.0f} "
                  f"{rate_gpu / base:7.2f}")


if __name__ == "__main__":
    main()
