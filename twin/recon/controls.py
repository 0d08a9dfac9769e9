"""Reconstruction controls (issue 24): a starting probe and object from a file, a resumed run,
a background, checkpoints and a live preview, for ``twin reconstruct``.

Files read: whatever :func:`twin.io.products.read_product` reads: twin's ``.h5`` output
(CONTRACTS §4), twin's ``.cxi`` product, a Ptychodus CXI product (probe ``/entry_1/image_1/data``
(coherent, incoherent, y, x): the first coherent mode; object ``/entry_1/image_2/data``, its
layers multiplied, placed by Ptychodus's object centre), pty-chi's and PtyPy's files.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from twin.core.errors import TwinInputError
from twin.io.atomic import atomic_path
from twin.io.datamodel import PtychoData
from twin.io.products import read_product
from twin.recon.options import Start

# a resampled start is allowed between these ratios of the file's pixel to the data's
_RESAMPLE_LIMITS = (0.25, 4.0)


def _product(path, option: str):
    """twin.io.products.read_product, its errors naming ``option`` and the file."""
    if not Path(path).is_file():
        raise TwinInputError(option, str(path), "an existing twin .h5/.cxi reconstruction or "
                                                "a Ptychodus CXI product")
    try:
        return read_product(path)
    except TwinInputError as e:
        raise TwinInputError(f"{option} {path}", e.value, e.allowed) from None


def _centred(obj: np.ndarray, origin_px) -> np.ndarray:
    """``obj`` rolled so that the file's position-0 pixel lands on (H//2, W//2), twin's."""
    if origin_px is None:
        return obj
    shift = [int(round(c // 2 - o)) for c, o in zip(obj.shape, origin_px)]
    return np.roll(obj, shift, axis=(0, 1))


def _resample(a: np.ndarray, pix_m: float | None, dx_m: float, label: str) -> np.ndarray:
    """``a`` (…, ny, nx) from pixel ``pix_m`` to ``dx_m`` (linear interpolation of the real
    and imaginary parts); unchanged within 0.1 % or when the file gives no pixel size."""
    if pix_m is None or abs(pix_m / dx_m - 1) < 1e-3:
        return a
    r = pix_m / dx_m
    if not (_RESAMPLE_LIMITS[0] <= r <= _RESAMPLE_LIMITS[1]):
        raise TwinInputError(label, f"pixel {pix_m:.4g} m",
                             f"within {_RESAMPLE_LIMITS[0]}–{_RESAMPLE_LIMITS[1]}× the data's "
                             f"object pixel {dx_m:.4g} m (resampled)")
    from scipy import ndimage

    z = (1,) * (a.ndim - 2) + (r, r)
    out = (ndimage.zoom(a.real, z, order=1) + 1j * ndimage.zoom(a.imag, z, order=1))
    return out.astype(np.complex64)


def _fit_probe(p: np.ndarray, n: int, label: str) -> np.ndarray:
    """(M, n, n): a 2-D probe gets a mode axis; a smaller one is padded with zeros, a larger one
    cropped about its centre if the crop keeps ≥ 99 % of its power."""
    if p.ndim == 2:
        p = p[None]
    if p.ndim != 3 or p.shape[0] < 1:
        raise TwinInputError(label, p.shape, f"probe modes (M, {n}, {n}) or one mode ({n}, {n})")
    out = np.zeros((p.shape[0], n, n), np.complex64)
    src, dst = [], []
    for s in p.shape[1:]:
        k = min(s, n)
        src.append(slice(s // 2 - k // 2, s // 2 - k // 2 + k))
        dst.append(slice(n // 2 - k // 2, n // 2 - k // 2 + k))
    out[:, dst[0], dst[1]] = p[:, src[0], src[1]]
    kept = np.sum(np.abs(out) ** 2) / max(np.sum(np.abs(p) ** 2), 1e-30)
    if kept < 0.99:
        raise TwinInputError(label, p.shape, f"a probe of {n} × {n} pixels at the data's object "
                                             f"pixel (cropping this one keeps {kept:.0%} of its "
                                             "power)")
    return out


def grid(data: PtychoData, upsampling: int | None) -> tuple[int, float]:
    """(n, dx_m): the reconstruction's probe side and object pixel, as the engines choose them
    (twin.recon.state.State).

    Parameters
    ----------
    data : PtychoData
        The data set.
    upsampling : int or None
        The option; None takes the illumination's side over the frames' where it divides, else
        the file's.

    Returns
    -------
    n : int
        Probe side, pixels (frames' side × upsampling).
    dx_m : float
        Object pixel λz/(N·p) of the frames as stored, metres.
    """
    nd = data.frames.shape[-1]
    u = upsampling
    if u is None:
        ill = data.illumination
        u = ill.shape[-1] // nd if ill is not None and ill.shape[-1] % nd == 0 else data.upsampling
    return nd * u, float(data.object_pixel_m)


def read_image(path, kind: str, n: int, dx_m: float, option: str) -> np.ndarray:
    """A starting probe (M, n, n) or object (H, W, its position 0 at (H//2, W//2)) from
    ``path`` (any layout twin.io.products reads), at pixel ``dx_m``.

    Parameters
    ----------
    path : str or Path
        The reconstruction file.
    kind : {"object", "probe"}
        What to read; anything but "object" reads the probe.
    n : int
        Probe side the reconstruction uses, pixels.
    dx_m : float
        The data's object pixel, metres; the file's arrays are resampled to it (linear, within
        0.25–4× of the file's pixel).
    option : str
        The option that named the file, for messages.

    Returns
    -------
    numpy.ndarray
        complex64 object (H, W), or probe modes (M, n, n) (Ptychodus: the first coherent mode's
        incoherent modes), padded or cropped about the centre.

    Raises
    ------
    TwinInputError
        A missing or unreadable file; no probe in it; a probe that is not 2-D or 3-D (after
        Ptychodus's first axis) or not finite; a pixel ratio outside 0.25–4; a probe whose crop
        to n × n would lose more than 1 % of its power.
    """
    p = _product(path, option)
    label = f"{option} {path}"
    if kind == "object":
        return _resample(_centred(p.object, p.origin_px).astype(np.complex64),
                         p.pixel_size_m, dx_m, label)
    if p.probe is None:
        raise TwinInputError(label, "no probe", "a twin .h5 (/probe) or a CXI product "
                                                "(/entry_1/image_1/data)")
    a = np.asarray(p.probe)
    if a.ndim == 4:                    # Ptychodus: (coherent, incoherent, y, x): the first
        a = a[0]
    if a.ndim not in (2, 3):
        raise TwinInputError(label, a.shape, f"probe modes (M, {n}, {n}) or one mode ({n}, {n})")
    a = a.astype(np.complex64)
    if not np.all(np.isfinite(a)):
        raise TwinInputError(label, "NaN/inf", "a finite probe")
    return _fit_probe(_resample(a, p.pixel_size_m, dx_m, label), n, label)


def _cost(path) -> list[float]:
    """The earlier iterations' costs: twin's /cost or Ptychodus's loss_values."""
    with h5py.File(path, "r") as f:
        for name in ("cost", "/entry_1/ptychodus/loss_values"):
            if name in f:
                return [float(c) for c in np.asarray(f[name]).ravel()]
    return []


def load_start(data: PtychoData, upsampling: int | None, probe=None, obj=None,
               resume=None) -> Start | None:
    """The :class:`~twin.recon.options.Start` that ``--probe``, ``--object`` and ``--resume``
    ask for (``--probe``/``--object`` replace what ``--resume`` gives); None for none.

    Parameters
    ----------
    data : PtychoData
        The data set to reconstruct.
    upsampling : int or None
        The upsampling option (:func:`grid`).
    probe, obj, resume : str or Path, optional
        Files given to ``--probe``, ``--object`` and ``--resume``; a resumed run also brings its
        positions and earlier costs.

    Returns
    -------
    Start or None

    Raises
    ------
    TwinInputError
        As :func:`read_image`; ``--resume <file>`` when its positions are not one per frame.
    """
    if probe is None and obj is None and resume is None:
        return None
    n, dx = grid(data, upsampling)
    start = Start()
    if resume is not None:
        start.object = read_image(resume, "object", n, dx, "--resume")
        start.probe = read_image(resume, "probe", n, dx, "--resume")
        start.positions_m = _product(resume, "--resume").positions_m
        start.cost = _cost(resume)
        if start.positions_m is not None and len(start.positions_m) != len(data.frames):
            raise TwinInputError(f"--resume {resume}", f"{len(start.positions_m)} positions",
                                 f"one per frame of the data ({len(data.frames)})")
    if probe is not None:
        start.probe = read_image(probe, "probe", n, dx, "--probe")
    if obj is not None:
        start.object = read_image(obj, "object", n, dx, "--object")
    return start


def read_background(spec: str, nd: int):
    """``--background``: a constant (counts per pixel and frame) or a file with a (nd, nd)
    array (``.npy``, or an HDF5 file's ``/background`` or its only dataset).

    Parameters
    ----------
    spec : str
        A number, or the path of a ``.npy`` or HDF5 file.
    nd : int
        The frames' side, pixels.

    Returns
    -------
    float or numpy.ndarray
        A float for a number; a float32 array of shape () or (nd, nd) from a file (frame
        orientation, DC at the centre).

    Raises
    ------
    TwinInputError
        ``--background`` for a spec that is neither a number nor an existing file, an
        unreadable HDF5 file, a file without a ``/background`` or single dataset, a shape other
        than () or (nd, nd), or negative or non-finite counts.
    """
    label = "--background"
    try:
        b = float(spec)
    except ValueError:
        path = Path(spec)
        if not path.is_file():
            raise TwinInputError(label, spec, "a number (counts per pixel and frame) or an "
                                              "existing .npy/.h5 file") from None
        if path.suffix.lower() == ".npy":
            b = np.load(path)
        else:
            try:
                f = h5py.File(path, "r")
            except OSError as e:
                raise TwinInputError(label, spec, f"a .npy or HDF5 file ({e})") from None
            with f:
                names = [k for k in f if isinstance(f[k], h5py.Dataset)]
                name = "background" if "background" in f else (names[0] if len(names) == 1
                                                                else None)
                if name is None:
                    raise TwinInputError(f"{label} {spec}", names,
                                         "a /background dataset or a single dataset")
                b = np.asarray(f[name])
        b = np.asarray(b, np.float32)
        if b.shape not in ((), (nd, nd)):
            raise TwinInputError(f"{label} {spec}", b.shape, f"a scalar or ({nd}, {nd}) "
                                                             "like the frames")
    if not np.all(np.isfinite(b)) or np.any(np.asarray(b) < 0):
        raise TwinInputError(label, spec, "finite, non-negative counts")
    return b


def write_preview(path, result) -> None:
    """A PNG of the object's phase, the probe's amplitude (first mode) and the cost curve,
    written atomically (matplotlib's Agg backend).

    Parameters
    ----------
    path : str or Path
        The PNG file.
    result : Result
        The reconstruction so far (``object``, ``probe``, ``cost``).

    Raises
    ------
    TwinInputError
        When ``path`` cannot be an output file.
    """
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(12, 4), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.subplots(1, 3)
    im = ax[0].imshow(np.angle(result.object), cmap="gray")
    ax[0].set_title("object phase (rad)")
    fig.colorbar(im, ax=ax[0])
    im = ax[1].imshow(np.abs(result.probe[0]), cmap="magma")
    ax[1].set_title(f"probe amplitude (mode 1 of {result.probe.shape[0]})")
    fig.colorbar(im, ax=ax[1])
    c = np.asarray(result.cost, float)
    ax[2].semilogy(np.arange(1, len(c) + 1), c, ".-")
    ax[2].set_xlabel("iteration")
    ax[2].set_title(f"cost (last {c[-1]:.4g})" if len(c) else "cost")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
