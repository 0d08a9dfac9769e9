"""The ptycho-tomography chain: projections of a 3D phantom at N angles → a ptychographic
reconstruction per angle (in parallel on Dask) → phase unwrapping, offset and ramp removal →
alignment → the volume → comparison with the phantom and the FSC of even/odd angles.

A full-size 3D acquisition is far beyond a laptop (seed 000: 501 × 100,000 frames), so
:func:`run_chain` works on a *preview*: the scenario's optics, detector, scan steps and
photon statistics on a field ``fov_um`` wide, with the sample shrunk self-similarly to fit
inside it, at ``n_angles`` angles. What it measures (resolution, PCC) is then what the
full-size chain would give for that sampling and dose per projection.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from twin.analysis import metrics

import twin.recon as reconstruct

from twin.workflows import simulate

from twin.tomo import reconstruct as tomo
from twin.workflows.cluster import map_ordered
from twin.analysis.metrics import unwrap_phase
from twin.geometry import Geometry, reconstruction_options
from twin.scenario import Scenario

# ----------------------------------------------------------------------------- phase


def remove_background(phase: np.ndarray, border: int) -> np.ndarray:
    """Subtract the plane fitted (least squares) to the outer ``border`` columns on each side
    (the air beside the sample).

    Parameters
    ----------
    phase : (rows, cols) float ndarray
        Unwrapped phase, radians.
    border : int
        Columns taken on the left and on the right, pixels.

    Returns
    -------
    (rows, cols) float ndarray
        ``phase`` less the plane a + b·row + c·col, radians.
    """
    ny, nx = phase.shape
    yy, xx = np.mgrid[:ny, :nx].astype(float)
    sel = np.zeros_like(phase, bool)
    sel[:, :border] = sel[:, nx - border:] = True
    A = np.stack([np.ones(sel.sum()), yy[sel], xx[sel]], axis=1)
    coef, *_ = np.linalg.lstsq(A, phase[sel], rcond=None)
    return phase - (coef[0] + coef[1] * yy + coef[2] * xx)


# ----------------------------------------------------------------------------- preview


def preview_scenario(s: Scenario, fov_um: float) -> Scenario:
    """The scenario on a square field ``fov_um`` wide, the sample shrunk self-similarly.

    The sample's cross-section is scaled by k = min(1, 0.8·``fov_um`` / its width) (so it
    fills at most 80 % of the field, and is never enlarged); its height becomes the larger of
    ``fov_um`` and k times its height; its fibres' diameters (means and spreads) are scaled by
    max(k, 0.25), so they shrink less than the sample.

    Parameters
    ----------
    s : Scenario
        The full-size scenario.
    fov_um : float
        Side of the square field, micrometres (``scan.fov_x_um`` = ``scan.fov_y_um``).

    Returns
    -------
    Scenario
        Validated again (:meth:`Scenario.with_values`: TwinInputError where a changed value is
        refused).
    """
    width = s.sample.cross_section_um[0]
    k = min(1.0, 0.8 * fov_um / width)
    changes = {"scan.fov_x_um": fov_um, "scan.fov_y_um": fov_um,
               "sample.height_um": max(fov_um, s.sample.height_um * k)}
    if s.sample.shape == "cylinder":
        changes["sample.diameter_um"] = s.sample.diameter_um * k
    else:
        changes["sample.width_um"] = s.sample.width_um * k
        changes["sample.depth_um"] = s.sample.depth_um * k
    # fibres shrink less than the sample, so that a preview still holds several of them at
    # sizes its pixels resolve
    kf = max(k, 0.25)
    fb = s.sample.fibres
    changes.update({"sample.fibres.outer_diameter_um_mean": fb.outer_diameter_um_mean * kf,
                    "sample.fibres.outer_diameter_um_sd": fb.outer_diameter_um_sd * kf,
                    "sample.fibres.inner_diameter_um_mean": fb.inner_diameter_um_mean * kf,
                    "sample.fibres.inner_diameter_um_sd": fb.inner_diameter_um_sd * kf})
    return s.with_values(changes)


@dataclass
class ProjectionResult:
    """One angle of the chain (:func:`one_projection`); phases in radians, PCC in [−1, 1]."""

    angle_deg: float
    phase: np.ndarray          # reconstructed, unwrapped, background removed (rows, cols)
    truth: np.ndarray          # the phantom's projected phase on the same grid
    pcc: float
    cost: list


def one_projection(s: Scenario, angle_deg: float, iterations: int, algorithm: str,
                   region: tuple[int, int]) -> ProjectionResult:
    """Simulate and reconstruct the projection at one angle (runs on a Dask worker).

    The whole scan is simulated, reconstructed, and the central ``region`` of the
    reconstruction and of the ground truth (aligned on the scan centre) is phase-unwrapped
    and freed of its background plane (:func:`remove_background`, border max(2, cols // 12)).

    Parameters
    ----------
    s : Scenario
        The (preview) scenario.
    angle_deg : float
        Rotation of the sample, degrees.
    iterations : int
        Iterations of the reconstruction.
    algorithm : str
        A :class:`twin.recon.Options` algorithm, or ``"auto"``: the scenario's own choices
        (:func:`twin.geometry.reconstruction_options`).
    region : (int, int)
        (rows, cols) of the central region kept, reconstruction pixels.

    Returns
    -------
    ProjectionResult
        Phases (rows, cols) float32, radians; the PCC between them; the reconstruction's cost
        per iteration.
    """
    p = simulate.plan(s, angle_deg=angle_deg)
    counts = np.concatenate([c for _, c in simulate.frames(p)])
    data = p.to_data(counts)
    # "auto": the scenario's choices, as twin run and the simulated sweeps make them
    opts = (reconstruction_options(s, iterations=iterations) if algorithm == "auto"
            else reconstruct.Options(algorithm=algorithm, iterations=iterations, seed=s.seed))
    r = reconstruct.reconstruct(data, opts)
    h, w = region

    def cut(a):
        """The central ``region`` (rows, cols) of ``a``, a view.

        Parameters
        ----------
        a : (H, W) ndarray
        """
        c = np.array(a.shape) // 2
        return a[c[0] - h // 2:c[0] - h // 2 + h, c[1] - w // 2:c[1] - w // 2 + w]

    # the reconstruction's centre pixel is the scan centre; the truth's centre pixel is the
    # scan centre up to p.origin_m (a whole number of pixels)
    shift = np.round(p.origin_m[::-1] / p.dx_m).astype(int)
    truth = np.roll(p.object, tuple(shift), axis=(0, 1))
    ph = unwrap_phase(np.angle(cut(r.object)))
    ph = remove_background(ph, max(2, w // 12))
    tph = unwrap_phase(np.angle(cut(truth)))
    tph = remove_background(tph, max(2, w // 12))
    return ProjectionResult(angle_deg, ph.astype(np.float32), tph.astype(np.float32),
                            metrics.pcc(ph, tph), r.cost)


@dataclass
class ChainResult:
    """The chain's output (:func:`run_chain`): phases in radians, δ dimensionless, the voxel
    and the FSC resolution in metres."""

    angles_deg: np.ndarray
    projections: np.ndarray    # (n_angles, rows, cols) reconstructed phase
    truth_projections: np.ndarray
    volume: np.ndarray         # (rows, cols, cols) δ
    truth_volume: np.ndarray   # δ of the phantom from its true projections, same algorithm
    voxel_m: float
    pcc_volume: float
    fsc_resolution_m: float
    projection_pcc: np.ndarray
    fsc: metrics.FourierCorrelation


def run_chain(s: Scenario, n_angles: int = 16, fov_um: float | None = None,
              iterations: int = 20, algorithm: str = "rpie", scheduler: str | None = None,
              n_workers: int | None = None, progress: bool = False) -> ChainResult:
    """The preview ptycho-tomography chain (see the module doc).

    Angles run from 0 over ``tomography.angular_range_deg`` (the end angle included only
    below 180°); the volumes and their scores are :func:`_chain_result`'s.

    Parameters
    ----------
    s : Scenario
        The full-size scenario (:func:`preview_scenario` makes the preview).
    n_angles : int
        Projections.
    fov_um : float or None
        Side of the preview's square field, micrometres (None: ``scan.fov_x_um``, at most
        6 µm).
    iterations : int
        Iterations of each projection's reconstruction.
    algorithm : str
        As :func:`one_projection`'s.
    scheduler : str or None
        A Dask scheduler's address (None: a local cluster).
    n_workers : int or None
        Local Dask workers (None: min(4, CPU cores)); 0, with no ``scheduler``: the
        projections are reconstructed one after the other in this process.
    progress : bool
        Show a progress bar of the projections.

    Returns
    -------
    ChainResult

    Raises
    ------
    TwinInputError
        ``sample.phantom = "siemens_star"`` (2D), or a preview value the scenario refuses.
    """
    fov = fov_um or min(s.scan.fov_x_um, 6.0)
    ps = preview_scenario(s, fov)
    if ps.sample.phantom == "siemens_star":
        from twin.core.errors import TwinInputError

        raise TwinInputError("sample.phantom", "siemens_star",
                             "a Siemens star is 2D: the tomography chain needs a 3D phantom")
    rng = ps.tomography.angular_range_deg
    angles = np.linspace(0, rng, n_angles, endpoint=rng < 180)
    g = Geometry.from_scenario(ps)
    dx = g.object_pixel_m
    w = int(math.floor(fov * 1e-6 / dx)) // 2 * 2
    region = (w, w)
    if n_workers == 0 and not scheduler:      # in this process (e.g. inside a Dask task)
        results = [one_projection(ps, a, iterations, algorithm, region) for a in angles]
    else:
        results = map_ordered(one_projection, [ps] * n_angles, list(angles),
                              [iterations] * n_angles, [algorithm] * n_angles,
                              [region] * n_angles, scheduler=scheduler,
                              n_workers=n_workers or min(4, os.cpu_count() or 1),
                              progress=progress, desc="projections", unit="proj")
    return _chain_result(angles, results, g)


def _chain_result(angles: np.ndarray, results: list[ProjectionResult],
                  g: Geometry) -> ChainResult:
    """The volumes of the reconstructed and of the true projections, and their scores.

    Each volume is the Shepp–Logan FBP of δ = −phase/(k·dx); its PCC with the truth's volume
    is taken within a centred disc of radius 0.45·n, and so is the FSC between the even and
    the odd angles' volumes (resolution at the half-bit threshold,
    :meth:`~twin.analysis.metrics.FourierCorrelation.resolution_m`'s default).

    Parameters
    ----------
    angles : (n_angles,) ndarray
        Degrees.
    results : list of ProjectionResult
        One per angle, in the order of ``angles``.
    g : Geometry
        The preview scenario's (its wavelength and object pixel, metres).
    """
    dx = g.object_pixel_m
    proj = np.stack([r.phase for r in results])
    truth = np.stack([r.truth for r in results])
    k = 2 * np.pi / g.wavelength_m
    # phase = −k∫δ dz, and the projector sums voxels: δ = FBP(−phase/(k·dx))
    to_delta = -1.0 / (k * dx)
    vol = tomo.fbp(proj * to_delta, angles, "shepp-logan")
    tvol = tomo.fbp(truth * to_delta, angles, "shepp-logan")
    n = vol.shape[-1]
    yy, xx = np.mgrid[:n, :n] - n // 2
    disc = (xx ** 2 + yy ** 2) < (0.45 * n) ** 2
    pcc = metrics.pcc(vol[:, disc], tvol[:, disc])
    even = tomo.fbp(proj[0::2] * to_delta, angles[0::2], "shepp-logan")
    odd = tomo.fbp(proj[1::2] * to_delta, angles[1::2], "shepp-logan")
    fsc = metrics.fourier_correlation(even * disc, odd * disc, dx)
    return ChainResult(angles, proj, truth, vol, tvol, dx, pcc, fsc.resolution_m(),
                       np.array([r.pcc for r in results]), fsc)
