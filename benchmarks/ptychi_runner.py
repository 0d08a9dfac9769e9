"""Run pty-chi (PyPI ``ptychi``) on a CXI file written by ``twin simulate``; used by
bench_ptychi.py in a separate process (and its own Python environment, which has torch).

    python ptychi_runner.py IN.cxi OUT.npz ALGORITHM ITERATIONS BATCH_SIZE [cpu|cuda]

The arrays given to pty-chi are the file's own: frames (DC at the centre, as pty-chi's
``fft_shift`` expects), the illumination as the initial probe, and the translations converted
to pixel positions of the probe centre.
"""

import sys
import time

t_start = time.perf_counter()

import h5py  # noqa: E402
import hdf5plugin  # noqa: E402,F401  (bitshuffle-LZ4 frames)
import numpy as np  # noqa: E402
import torch  # noqa: E402

import ptychi.api as api  # noqa: E402
from ptychi.api.task import PtychographyTask  # noqa: E402
from ptychi.utils import get_suggested_object_size  # noqa: E402


def main(path, out, algorithm, iterations, batch_size, device="cpu"):
    torch.set_default_device(device)
    with h5py.File(path, "r") as f:
        frames = f["entry_1/data_1/data"][()].astype(np.float32)
        tr = f["entry_1/data_1/translation"][()]
        probe = f["entry_1/instrument_1/source_1/illumination"][()].astype(np.complex64)
        dist = float(f["entry_1/instrument_1/detector_1/distance"][()])
        pix = float(f["entry_1/instrument_1/detector_1/x_pixel_size"][()])
        lam = float(f["entry_1/instrument_1/source_1/wavelength"][()])
    dx = lam * dist / (frames.shape[-1] * pix)
    pos = np.stack([tr[:, 1] / dx, tr[:, 0] / dx], axis=1)      # (y, x) pixels
    opts = {"lsqml": api.LSQMLOptions, "rpie": api.RPIEOptions, "epie": api.EPIEOptions}[
        algorithm]()
    opts.data_options.data = frames
    opts.data_options.wavelength_m = lam
    shape = get_suggested_object_size(pos, probe.shape[-2:], extra=20)
    opts.object_options.initial_guess = torch.ones([1, *shape], dtype=torch.complex64)
    opts.object_options.pixel_size_m = dx
    opts.object_options.optimizable = True
    opts.object_options.step_size = 1.0 if algorithm == "lsqml" else 1.0
    opts.probe_options.initial_guess = torch.as_tensor(probe[None])
    opts.probe_options.optimizable = True
    opts.probe_options.step_size = 1.0
    opts.probe_position_options.position_x_px = pos[:, 1]
    opts.probe_position_options.position_y_px = pos[:, 0]
    opts.probe_position_options.optimizable = False
    opts.reconstructor_options.batch_size = batch_size
    opts.reconstructor_options.num_epochs = iterations
    t0 = time.perf_counter()
    task = PtychographyTask(opts)
    task.run()
    if device != "cpu":
        torch.cuda.synchronize()
    t_recon = time.perf_counter() - t0
    obj = task.get_data_to_cpu("object", as_numpy=True)[0]
    np.savez(out, object=obj, seconds_recon=t_recon, pixel_size_m=dx,
             seconds_process=time.perf_counter() - t_start)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
         sys.argv[6] if len(sys.argv) > 6 else "cpu")
