"""The steps of :mod:`twin.workflows.simvol`'s measurement, one projection or one volume at a
time: the sample's displacement at each projection, one projection simulated and reconstructed,
the phantom's exact projections, the volume reconstructed from aligned projections, its
registration onto the truth, and the scores of the alignment and of seed 000's xz slices.

:mod:`twin.workflows.simvol` re-exports the public names.
"""

from __future__ import annotations

import math

import numpy as np

from twin.core.errors import TwinInputError
from twin.scenario import Scenario

#: Marks the misalignment's random stream (distinct from the noise streams).
SHIFT_STREAM = 90_002


def projection_shifts(s: Scenario, angles_deg, seed: int) -> np.ndarray:
    """(n, 2) displacement (x, y) of the sample at each projection, metres.

    The wobble is the rotation axis's asynchronous error motion: per axis, harmonics 2–5 of a
    turn with normal amplitudes and uniform phases, scaled to an RMS of ``wobble_um`` over a
    turn (the once-per-turn part only moves the rotation centre, which the alignment's gauge
    leaves free). The misalignment is independent and normal, RMS ``misalignment_um`` per axis.
    The random numbers are drawn whatever the amplitudes, so changing one keeps the other.

    Parameters
    ----------
    s : Scenario
        Its ``[tomography] wobble_um`` and ``misalignment_um`` (µm, RMS per axis).
    angles_deg : (n,) array_like
        The projections' angles, degrees.
    seed : int
        The random stream is ``[seed, SHIFT_STREAM]``.

    Returns
    -------
    (n, 2) float ndarray
    """
    t = s.tomography
    th = np.deg2rad(np.asarray(angles_deg, float))
    rng = np.random.default_rng([int(seed), SHIFT_STREAM])
    h = np.arange(2, 6)[:, None]
    out = np.zeros((len(th), 2))
    for axis in range(2):
        a = rng.normal(size=(4, 1))
        phase = rng.uniform(0, 2 * np.pi, size=(4, 1))
        wave = (a * np.cos(h * th[None] + phase)).sum(axis=0)
        out[:, axis] = t.wobble_um * 1e-6 * wave / math.sqrt(float((a ** 2).sum()) / 2)
    out += t.misalignment_um * 1e-6 * rng.normal(size=(len(th), 2))
    return out


def _cut(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The central ``shape`` of ``a`` (its centre pixel at the output's ``shape // 2``)."""
    h, w = shape
    c = np.array(a.shape) // 2
    return a[c[0] - h // 2:c[0] - h // 2 + h, c[1] - w // 2:c[1] - w // 2 + w]


def one_projection(sv: Scenario, k: int, angle_deg: float, shift_m, shape,
                   iterations: int | None) -> np.ndarray:
    """Projection ``k`` of the sub-volume (one Dask task): simulated with the sample displaced
    by ``shift_m``, reconstructed with the scenario's options from what a user has, its phase
    unwrapped and its background plane removed (border max(2, 0.06·cols) columns).

    Parameters
    ----------
    sv : Scenario
        The sub-volume's scenario, with the seed.
    k : int
        Projection index: its own noise stream (:func:`twin.workflows.simplan.noise_key`).
    angle_deg : float
        Rotation of the sample, degrees.
    shift_m : (2,) array_like
        The sample's displacement (x, y), metres (:func:`projection_shifts`).
    shape : (int, int)
        (rows, cols) of the central region kept, voxels.
    iterations : int or None
        Ptychographic iterations (None: the scenario's).

    Returns
    -------
    (rows, cols) float32 ndarray
        ∫δ dz in voxels: −phase / (2π/λ · dx).
    """
    from twin.analysis.metrics import unwrap_phase
    from twin.geometry import reconstruction_options
    import twin.recon as engines
    from twin.workflows import simulate
    from twin.workflows.ptychotomo import remove_background

    p = simulate.plan(sv, angle_deg=float(angle_deg), projection=int(k),
                      sample_shift_m=tuple(float(v) for v in shift_m))
    g = p.geometry
    counts = np.concatenate([c for _, c in simulate.frames(p)])
    p._device.clear()
    r = engines.reconstruct(p.to_data(counts),
                            reconstruction_options(sv, iterations=iterations))
    phase = unwrap_phase(np.angle(_cut(r.object, shape)))
    phase = remove_background(phase, max(2, int(0.06 * shape[1])))
    return (-phase / (2 * np.pi / g.wavelength_m * g.object_pixel_m)).astype(np.float32)


def projection_angles(sv: Scenario, n: int) -> np.ndarray:
    """The ``n`` angles (degrees) of a sub-volume: from 0 over ``tomography.angular_range_deg``,
    the end included only below 180°.

    Parameters
    ----------
    sv : Scenario
        The sub-volume's scenario (:func:`sub_volume`).
    n : int
        Projections.
    """
    rng = sv.tomography.angular_range_deg
    return np.linspace(0.0, rng, n, endpoint=rng < 180)


def truth_projections(sv: Scenario, angles_deg, shape, supersample: int = 3) -> np.ndarray:
    """(n, rows, cols) ∫δ dz in voxels of the unshifted phantom at ``angles_deg``, each pixel
    the mean of ``supersample``² point samples (as the simulation's box average).

    Parameters
    ----------
    sv : Scenario
        The sub-volume's scenario (its phantom, seed and voxel).
    angles_deg : (n,) array_like
        Degrees.
    shape : (int, int)
        (rows, cols), voxels, centred on the rotation axis.
    supersample : int
        Point samples per voxel side.

    Returns
    -------
    (n, rows, cols) float32 ndarray
    """
    from twin.geometry import Geometry
    from twin.sample import phantoms

    g = Geometry.from_scenario(sv)
    dx = g.object_pixel_m
    h, w = shape
    sub = (np.arange(supersample) - (supersample - 1) / 2) / supersample
    y = ((np.arange(h) - h // 2)[:, None] + sub[None]).ravel() * dx
    x = ((np.arange(w) - w // 2)[:, None] + sub[None]).ravel() * dx
    out = np.empty((len(angles_deg), h, w), np.float32)
    for i, a in enumerate(angles_deg):
        grid = phantoms.Grid(y_m=y, x_m=x, pixel_m=dx / supersample, energy_kev=g.energy_kev,
                             angle_deg=float(a), n_slices=1, seed=sv.seed)
        proj = phantoms.projected_slabs(sv.sample.phantom, sv.sample, g.sample_extent, grid)
        d = proj.sum(axis=0).real.reshape(h, supersample, w, supersample).mean(axis=(1, 3))
        out[i] = d / dx
    return out


def tomography(proj: np.ndarray, angles_deg, method: str) -> np.ndarray:
    """(rows, n, n) volume of aligned projections (n_angles, rows, n) by ``method``.

    Parameters
    ----------
    proj : (n_angles, rows, n) ndarray
        ∫δ dz in voxels.
    angles_deg : (n_angles,) array_like
        Degrees.
    method : {"fbp", "sirt", "sart", "tv"}
        Shepp–Logan FBP, 50 SIRT or 10 SART iterations, or TV-regularised (defaults of
        :func:`twin.tomo.reconstruct.tv_reconstruct`).

    Returns
    -------
    (rows, n, n) ndarray
        δ per voxel.

    Raises
    ------
    TwinInputError
        Another ``method`` (field ``tomography.method``).
    """
    from twin.tomo import reconstruct as tomo

    if method == "fbp":
        return tomo.fbp(proj, angles_deg, "shepp-logan")
    if method == "sirt":
        return np.asarray(tomo.sirt(proj, angles_deg, iterations=50))
    if method == "sart":
        return np.asarray(tomo.sart(proj, angles_deg, iterations=10))
    if method == "tv":
        return np.asarray(tomo.tv_reconstruct(proj, angles_deg))
    raise TwinInputError("tomography.method", method, "allowed: fbp, sirt, sart, tv")


def register_volume(vol: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``vol`` translated (sub-voxel, by Fourier shift) onto ``ref``: the peak of their
    cross-correlation, refined by a parabola through its neighbours on each axis.

    Parameters
    ----------
    vol, ref : ndarray
        Real volumes of one shape (any number of axes); the shift is periodic.

    Returns
    -------
    float32 ndarray
        ``vol`` shifted, shaped like it.
    """
    fa = np.fft.fftn(ref)
    fb = np.fft.fftn(vol)
    cc = np.fft.ifftn(fa * np.conj(fb)).real
    peak = np.array(np.unravel_index(np.argmax(cc), cc.shape))
    shift = peak.astype(float)
    for ax, n in enumerate(cc.shape):
        idx = [tuple(peak)] * 3
        lo, hi = list(peak), list(peak)
        lo[ax] = (peak[ax] - 1) % n
        hi[ax] = (peak[ax] + 1) % n
        c0, c1, c2 = cc[tuple(lo)], cc[tuple(idx[0])], cc[tuple(hi)]
        den = c0 - 2 * c1 + c2
        if den < 0:
            shift[ax] += 0.5 * (c0 - c2) / den
        shift[ax] = (shift[ax] + n / 2) % n - n / 2
    phase = sum(np.fft.fftfreq(n)[tuple(slice(None) if i == ax else None
                                         for i in range(cc.ndim))] * shift[ax]
                for ax, n in enumerate(cc.shape))
    return np.fft.ifftn(fb * np.exp(-2j * np.pi * phase)).real.astype(np.float32)


def _gauge_residual(found_px: np.ndarray, true_px: np.ndarray, angles_deg) -> tuple:
    """RMS of what the alignment left in rows and in columns, pixels: found + true shift, less
    the translations of the whole volume (a mean row shift; column shifts along 1, cos θ,
    sin θ)."""
    th = np.deg2rad(np.asarray(angles_deg, float))
    e = found_px + true_px
    rows = e[:, 0] - e[:, 0].mean()
    basis = np.stack([np.ones_like(th), np.cos(th), np.sin(th)], axis=1)
    cols = e[:, 1] - basis @ np.linalg.lstsq(basis, e[:, 1], rcond=None)[0]
    return float(np.sqrt(np.mean(rows ** 2))), float(np.sqrt(np.mean(cols ** 2)))


def _xz_split(even: np.ndarray, odd: np.ndarray, disc: np.ndarray, dx: float) -> tuple:
    """Seed 000's measurement on the central xz slices of the even and odd volumes: (FIRE of a
    standard FRC at 1/7, FIRE as the BIOP plugin computes it), metres."""
    from twin.analysis import biop, metrics

    k = even.shape[0] // 2
    a, b = even[k] * disc, odd[k] * disc
    frc = metrics.fourier_correlation(a, b, dx)
    return 2 * frc.resolution_m("1/7", skip_rings=1), float(biop.fire(a, b, dx))
