"""Big data without big memory (issue 11 §5): ``twin reconstruct`` on a large CXI file whose
frames are streamed batch by batch, peak RSS and time of the whole process.

    python benchmarks/bench_stream.py [--frames 100000] [--size 128] [--iterations 1]
                                      [--max-memory-gb 4]

The file is synthetic (a random phase object on a raster, frames from twin's forward operator,
Poisson noise, uint16, gzip chunks of 64 frames as ``twin simulate`` writes them): simulating
seed 000's 3 kHz scan with the full detector physics takes hours on 2 cores, and the streaming
path does not depend on where the frames came from. 100,000 frames of 128² are 6.1 GiB as
float32 (3.1 GiB as uint16), above the 4 GB budget: the command must stream.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np


def write_file(path: Path, frames: int, n: int, seed: int = 0) -> None:
    from twin.operators import ptychography

    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(frames)))
    step = n / 8
    dx = 20e-9
    shape = (int(side * step + n + 24),) * 2
    yy, xx = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    xx[1::2] = xx[1::2, ::-1]                                  # a snake (fly-scan-like) raster
    t_px = (np.stack([xx.ravel(), yy.ravel()], 1)[:frames] * step).astype(float)
    t_px -= t_px.mean(axis=0)
    pos = ptychography.positions_from_translations(t_px * dx, dx, shape, (n, n))
    r2 = ((np.mgrid[:n, :n] - n / 2) ** 2).sum(axis=0) / (n / 7) ** 2
    probe = (np.exp(-r2) / np.sqrt(np.sum(np.exp(-2 * r2))) * np.sqrt(2e4))[None]
    obj = np.exp(1j * rng.uniform(0, 1, shape).astype(np.float32)).astype(np.complex64)
    lam, z = 1.5e-10, 2.0
    with h5py.File(path, "w") as f:
        f["cxi_version"] = 150
        ds = f.create_dataset("entry_1/data_1/data", (frames, n, n), np.uint16,
                              chunks=(64, n, n), compression="gzip", compression_opts=1,
                              shuffle=True)
        for a in range(0, frames, 4096):
            b = min(a + 4096, frames)
            op = ptychography.FarFieldPtychography(probe.astype(np.complex64), pos[a:b], shape)
            ds[a:b] = rng.poisson(np.asarray(op.intensity(obj))).astype(np.uint16)
        f["entry_1/data_1/translation"] = np.concatenate([t_px * dx, np.zeros((frames, 1))], 1)
        det = "entry_1/instrument_1/detector_1/"
        f[det + "distance"] = z
        f[det + "x_pixel_size"] = f[det + "y_pixel_size"] = lam * z / (n * dx)
        f["entry_1/instrument_1/source_1/wavelength"] = lam
        f["entry_1/instrument_1/source_1/illumination"] = probe.astype(np.complex64)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--iterations", type=int, default=1)
    ap.add_argument("--max-memory-gb", type=float, default=4.0)
    ap.add_argument("--keep", default=None, help="write the file here and keep it")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "big.cxi"
        t0 = time.perf_counter()
        if not path.exists():
            write_file(path, args.frames, args.size)
        t_write = time.perf_counter() - t0
        gib = args.frames * args.size ** 2 * 4 / 2 ** 30
        print(f"file: {args.frames} frames of {args.size}² ({gib:.2f} GiB as float32, "
              f"{path.stat().st_size / 2 ** 30:.2f} GiB on disk), written in {t_write:.1f} s")
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "twin", "reconstruct", str(path), "-o",
                            str(Path(tmp) / "out.h5"), "--algorithm", "rpie", "--modes", "1",
                            "--position-correction", "none", "--iterations",
                            str(args.iterations), "--max-memory-gb", str(args.max_memory_gb)],
                           capture_output=True, text=True)
        dt = time.perf_counter() - t0
        rss_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2 ** 20
        print(r.stderr.strip().splitlines()[-1:] if r.returncode else r.stdout.strip())
        print(f"twin reconstruct: exit {r.returncode}, {dt:.1f} s for {args.iterations} "
              f"iteration(s) ({args.frames * args.iterations / dt:.0f} frame-it/s whole "
              f"process), peak RSS {rss_gib:.2f} GiB (budget {args.max_memory_gb} GB; the "
              f"frames alone {gib:.2f} GiB)")


if __name__ == "__main__":
    main()
