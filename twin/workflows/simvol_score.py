"""Scoring a simulated sub-volume (:mod:`twin.workflows.simvol`, step 4): its truth, its FSCs
against the truth and between the even and the odd projections (shells, and split along and
across the rotation axis), and the arrays kept so that a new score needs no new simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from twin.analysis.resolution import CrossSpectra
from twin.analysis.volume import AXIAL_HALF_ANGLE_DEG, CONE_HALF_ANGLE_DEG, CONE_STEP_DEG
from twin.workflows.simvol_steps import (_gauge_residual, _xz_split, register_volume, tomography,
                                         truth_projections)

if TYPE_CHECKING:
    from twin.scenario import Scenario

#: The truth's projections: this many times Crowther's count π/2 × width.
TRUTH_OVERSAMPLING = 2


@dataclass
class Projections:
    """The sub-volume's reconstructed projections
    (:func:`twin.workflows.simvol.simulate_projections`); ``sub`` is its
    :class:`twin.workflows.simvol.SubVolume` (not imported here: simvol imports this module)."""

    sub: object
    scenario: Scenario          # the sub-volume's, with the seed
    angles_deg: np.ndarray
    shifts_m: np.ndarray        # (n, 2) x, y of the sample at each projection
    shape: tuple
    proj: np.ndarray            # (n, rows, cols) ∫δ dz in voxels


def truth_volume(pr: Projections) -> np.ndarray:
    """The truth that :func:`score_volume` scores ``pr`` against: the phantom's exact
    projections at :data:`TRUTH_OVERSAMPLING` × Crowther's count over the scenario's angular
    range, reconstructed by filtered back-projection (Shepp–Logan) on the same grid.

    Parameters
    ----------
    pr : Projections
        What :func:`simulate_projections` returned (its scenario, seed and region).
    """
    from twin.tomo import reconstruct as tomo

    n_truth = TRUTH_OVERSAMPLING * math.ceil(math.pi / 2 * pr.shape[1])
    rng = pr.sub.scenario.tomography.angular_range_deg
    t_angles = np.linspace(0.0, rng, n_truth, endpoint=rng < 180)
    return tomo.fbp(truth_projections(pr.scenario, t_angles, pr.shape), t_angles, "shepp-logan")


def score_volume(pr: Projections, method: str, truth: np.ndarray | None = None) -> dict:
    """Align ``pr``'s projections, reconstruct the volume by ``method`` and score it against
    the truth and between the even and the odd projections.

    Parameters
    ----------
    pr : Projections
        What :func:`simulate_projections` returned.
    method : {"fbp", "sirt", "sart", "tv"}
        The tomographic reconstruction (:func:`tomography`).
    truth : ndarray, optional
        :func:`truth_volume` of ``pr`` where the caller has it (None: computed here).

    Returns
    -------
    dict
        :class:`VolumeMeasurement`'s fields but those of the sub-volume
        (``fluence_photons_per_m2``, ``voxel_m``, ``field_m``, ``sample_width_m``) and
        ``seconds``.
    """
    from twin.analysis import metrics
    from twin.tomo import reconstruct as tomo
    from twin.workflows import simres

    angles, dx, shape = pr.angles_deg, pr.sub.voxel_m, pr.shape
    aligned, found = tomo.align_projections(pr.proj, angles)
    res_y, res_x = _gauge_residual(np.asarray(found), pr.shifts_m[:, ::-1] / dx, angles)
    vol = tomography(aligned, angles, method)
    even = tomography(aligned[0::2], angles[0::2], method)
    odd = tomography(aligned[1::2], angles[1::2], method)
    truth = truth_volume(pr) if truth is None else truth
    m = shape[1]
    yy, xx = np.mgrid[:m, :m] - m // 2
    disc = ((xx ** 2 + yy ** 2) < (0.45 * m) ** 2)[None]
    reg = register_volume(vol, truth)
    beam = pr.sub.beam_diameter_m
    # one transform per pair: the whole shells, and the directions of _axial_scores
    sp_t, sp_s = (CrossSpectra.of(a * disc, b * disc, dx) for a, b in ((reg, truth), (even, odd)))
    fsc_t, fsc_s = (sp.part(np.ones(sp.cross.shape, bool)) for sp in (sp_t, sp_s))
    mask = np.broadcast_to(disc, vol.shape)
    fire, fire_biop = _xz_split(even, odd, disc[0], dx)
    return dict(
        **_axial_scores(sp_t, sp_s, beam),
        resolution_truth_m=simres._resolution(fsc_t, beam, against_truth=True),
        unresolved=simres._resolution(fsc_t, beam, against_truth=True, bound=True),
        resolution_split_m=simres._resolution(fsc_s, beam),
        split_unresolved=simres._resolution(fsc_s, beam, bound=True),
        pcc=float(metrics.pcc(reg[mask], truth[mask])),
        alignment_residual_x_m=res_x * dx, alignment_residual_y_m=res_y * dx,
        misalignment_rms_m=float(np.sqrt(np.mean(np.sum(pr.shifts_m ** 2, axis=1)))),
        n_angles=int(len(angles)), fire_xz_split_m=fire, fire_xz_split_biop_m=fire_biop)


def _axial_scores(sp_t, sp_s, beam: float) -> dict:
    """:class:`VolumeMeasurement`'s direction fields from the cross spectra of the volume and
    the truth (``sp_t``) and of the even and odd volumes (``sp_s``), rotation axis the first:
    along and across the axis (:func:`twin.analysis.resolution.axial_correlations`), and the
    volume against the truth cone by cone across it
    (:func:`~twin.analysis.resolution.azimuthal_correlations`; the worst cone, an unresolved
    one before any resolved), each read as the shell FSC is."""
    from twin.workflows import simres

    (t_along, t_across), (_, s_across) = (sp.axial(0, AXIAL_HALF_ANGLE_DEG)
                                          for sp in (sp_t, sp_s))
    out = {}
    for name, frc, truth_ref in (("truth_along", t_along, True),
                                 ("truth_across", t_across, True),
                                 ("split_across", s_across, False)):
        out[f"resolution_{name}_m"] = simres._resolution(frc, beam, against_truth=truth_ref)
        out[f"{name}_unresolved"] = simres._resolution(frc, beam, against_truth=truth_ref,
                                                       bound=True)
    cones = [(simres._resolution(c, beam, against_truth=True, bound=True),
              simres._resolution(c, beam, against_truth=True), az)
             for az, c in sp_t.cones(0, CONE_STEP_DEG, CONE_HALF_ANGLE_DEG)]
    unresolved, d, az = max(cones)
    out.update(resolution_truth_worst_across_m=d, truth_worst_across_unresolved=unresolved,
               worst_across_azimuth_deg=az,
               cones_unresolved=int(sum(c[0] for c in cones)), cones=len(cones))
    return out


def _arrays_path(key: str):
    from twin.workflows import simres

    return simres.cache_dir() / f"{key}.npz"


def _store_arrays(key: str, pr: Projections, truth: np.ndarray) -> None:
    """Keep the reconstructed projections and the truth of volume ``key`` beside its cache
    entry (``KEY.npz``, never shipped), so that a new score needs no new simulation
    (:func:`rescore_volume`). A cache that cannot be written costs only that reuse."""
    from twin.io.atomic import atomic_path

    try:
        with atomic_path(_arrays_path(key)) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, proj=pr.proj, angles=pr.angles_deg, shifts=pr.shifts_m,
                     truth=truth)
    except OSError as exc:
        import warnings

        warnings.warn(f"twin could not keep the volume's arrays ({exc})", stacklevel=2)


def _axial_columns(rows) -> dict:
    """:class:`VolumeCalibration`'s direction fields, by name, from ``rows`` (fluence, its
    :class:`VolumeMeasurement` list): along, across and the worst cone across the axis, the
    means over the seeds and every seed resolved; the most cones unresolved in a seed per point,
    cones per volume, the worst cone's azimuth (first seed) per point; every seed's even/odd
    FSC resolved, per point."""
    out = {}
    for part, name in (("truth_along", "along"), ("truth_across", "across"),
                       ("truth_worst_across", "worst")):
        out[f"{name}_m"] = [float(np.mean([getattr(m, f"resolution_{part}_m") for m in ms]))
                            for _, ms in rows]
        out[f"{name}_resolved"] = [all(getattr(m, f"{part}_unresolved") is False for m in ms)
                                   for _, ms in rows]
    out["cones_unresolved"] = [max(-1 if m.cones_unresolved is None else m.cones_unresolved
                                   for m in ms) for _, ms in rows]
    out["cones"] = max((m.cones or 0) for _, ms in rows for m in ms)
    out["worst_azimuth_deg"] = [float(ms[0].worst_across_azimuth_deg) for _, ms in rows]
    out["split_resolved"] = [not any(m.split_unresolved for m in ms) for _, ms in rows]
    return out
