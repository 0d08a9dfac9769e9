"""The forecast's resolution terms, vectorised over sweep points.

2D: the resolution model's d(F) at the fluence per projection F (:class:`ResolutionLaw`: the
pixel alone, Howells et al. 2009, the Rose criterion, or the twin's own simulated calibration),
no finer than the pixel, and no number below the calibration's cliff.

3D. Dose fractionation (Hegerl & Hoppe 1976): the 3D reconstruction from N projections of
fluence F each reaches the resolution one projection of fluence N·F would, so the total
fluence sets the dose limit. Crowther: N projections over the angular range Θ resolve
d = D·Δθ/2, Δθ = Θ/N, D the sample's widest extent across the beam (π·D/(2N) over 180°).
A missing wedge (Θ < 180°) elongates the resolution along the beam direction by
e = √((α + sin α cos α)/(α − sin α cos α)), α = Θ/2 (Radermacher 1988); more projections
over the same range do not remove it. ``resolution_3d_forecast_m`` is the directional mean
d·e^(1/3) (what a Fourier shell correlation averages), ``resolution_3d_worst_m`` is d·e.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.analysis.laws import simulated_law
from twin.workflows.forecast_params import ForecastInputs, Limit3D, ResolutionModel


@dataclass(frozen=True)
class ResolutionLaw:
    """The inputs of the resolution laws, one array element per sweep point.

    Attributes
    ----------
    model : ndarray
        :class:`~twin.workflows.forecast_params.ResolutionModel` of each point.
    pixel_m, wavelength_m : ndarray
        Reconstructed pixel and X-ray wavelength, metres.
    reference_resolution_m, reference_fluence_per_m2 : ndarray
        Howells: the paper's resolution at its fluence (NaN for other models).
    rose_snr, rose_contrast2 : ndarray
        Rose: the signal-to-noise ratio asked for, and |Δn|² of feature against background.
    d0_m, f0_per_m2, k, f_turn_per_m2, k_high : ndarray
        Simulated: the calibration's law (:func:`twin.analysis.laws.simulated_law`).
    """

    model: np.ndarray
    pixel_m: np.ndarray
    wavelength_m: np.ndarray
    reference_resolution_m: np.ndarray
    reference_fluence_per_m2: np.ndarray
    rose_snr: np.ndarray
    rose_contrast2: np.ndarray
    d0_m: np.ndarray
    f0_per_m2: np.ndarray
    k: np.ndarray
    f_turn_per_m2: np.ndarray
    k_high: np.ndarray

    @classmethod
    def from_inputs(cls, p: ForecastInputs) -> ResolutionLaw:
        """The law of the forecast's inputs ``p`` (their resolution model's columns).

        Parameters
        ----------
        p : ForecastInputs
            n points (:func:`~twin.workflows.forecast_params.physical_parameters`).
        """
        return cls(p.resolution_model, p.object_pixel_m, p.wavelength_m,
                   p.reference_resolution_m, p.reference_fluence_per_m2, p.rose_snr,
                   p.rose_contrast2, p.sim_d0_m, p.sim_f0_per_m2, p.sim_k,
                   p.sim_f_turn_per_m2, p.sim_k_high)

    def dose_limited(self, f, total: bool = False):
        """d at fluence ``f`` (photons/m²) under each point's model, metres.

        ``total``: the fluence of all projections (dose fractionation). The simulated curve's
        detector-limited side (above its turnover, or a negative k) comes from what more flux
        does to each frame (count-rate losses, counter overflow), which spreading the same
        flux over more projections does not do: the total dose follows the dose-limited law
        (k ≥ 0 there), and each projection's detector penalty is applied on top of it.

        Parameters
        ----------
        f : ndarray
            (n,) fluence, photons/m² (or a scalar, broadcast).
        total : bool
            ``f`` is the fluence of all projections: the simulated law without its turnover
            and with k clipped at 0.

        Returns
        -------
        ndarray
            (n,) resolution, metres: Howells, Rose or the simulated law by each point's model,
            the pixel for ``"pixel"`` (not clipped at the pixel here).
        """
        if total:
            sim_f = simulated_law(f, self.d0_m, self.f0_per_m2, np.maximum(self.k, 0.0))
        else:
            sim_f = simulated_law(f, self.d0_m, self.f0_per_m2, self.k, self.f_turn_per_m2,
                                  self.k_high)
        k = 2 * np.pi / self.wavelength_m
        with np.errstate(divide="ignore", invalid="ignore"):
            howells_f = self.reference_resolution_m * (f / self.reference_fluence_per_m2) ** -0.25
            rose_f = (self.rose_snr ** 2 / (4 * f * k ** 2 * self.rose_contrast2)) ** 0.25
        m = self.model
        return np.where(m == ResolutionModel.HOWELLS, howells_f,
                        np.where(m == ResolutionModel.ROSE, rose_f,
                                 np.where(m == ResolutionModel.SIMULATED, sim_f, self.pixel_m)))

    def detector_penalty(self, fluence, per_projection):
        """What the detector costs each projection at its own fluence F: the simulated curve
        ``per_projection`` over the dose-limited law at F (1 below the turnover). Frames that
        lose counts stay as bad however the dose is fractionated, so the 3D dose limit carries
        the same factor.

        Parameters
        ----------
        fluence : ndarray
            (n,) fluence per projection, photons/m².
        per_projection : ndarray
            (n,) resolution at it, metres (:meth:`dose_limited`).

        Returns
        -------
        ndarray
            (n,) factor ≥ 1; 1 for the models other than ``"simulated"`` and where the ratio is
            not finite.
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            penalty = np.where(self.model == ResolutionModel.SIMULATED, np.maximum(
                1.0, per_projection / self.dose_limited(fluence, total=True)), 1.0)
        return np.where(np.isfinite(penalty), penalty, 1.0)


def missing_wedge_elongation(theta):
    """e = √((α + sin α cos α)/(α − sin α cos α)), α = Θ/2 (Radermacher 1988); 1 from 180° on.

    Parameters
    ----------
    theta : ndarray
        Angular range Θ, radians.
    """
    alpha = np.minimum(theta, np.pi) / 2
    sc = np.sin(alpha) * np.cos(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(theta >= np.pi, 1.0, np.sqrt((alpha + sc) / (alpha - sc)))


def resolution_2d(law: ResolutionLaw, fluence, cliff_per_m2):
    """(per-projection d, detector penalty, unresolved, forecast d) at fluence per projection
    ``fluence``: below the cliff (the lowest fluence at which every simulated seed resolved,
    above one at which some seed failed) the twin's points say the reconstruction fails, and
    the forecast is NaN.

    Parameters
    ----------
    law : ResolutionLaw
        The n points' laws.
    fluence : ndarray
        (n,) fluence per projection, photons/m².
    cliff_per_m2 : ndarray
        (n,) the simulated calibration's cliff, photons/m² (NaN: none; ignored for the models
        other than ``"simulated"``).

    Returns
    -------
    per_projection : ndarray
        (n,) :meth:`ResolutionLaw.dose_limited` at ``fluence``, metres.
    penalty : ndarray
        (n,) :meth:`ResolutionLaw.detector_penalty`, ≥ 1.
    unresolved : ndarray
        (n,) bool, ``fluence`` below the cliff.
    resolution : ndarray
        (n,) ``per_projection`` no finer than the pixel, metres; NaN where unresolved.
    """
    per_projection = law.dose_limited(fluence)
    penalty = law.detector_penalty(fluence, per_projection)
    simulated = law.model == ResolutionModel.SIMULATED
    unresolved = simulated & np.isfinite(cliff_per_m2) & (fluence < cliff_per_m2 * (1 - 1e-9))
    resolution = np.where(unresolved, np.nan, np.maximum(per_projection, law.pixel_m))
    return per_projection, penalty, unresolved, resolution


def resolution_3d(law: ResolutionLaw, fluence, n_proj, penalty, voxel_m, angular_range_deg,
                  sample_width_m) -> dict[str, np.ndarray]:
    """The 3D terms: dose over all projections, Crowther, voxel, missing wedge.

    Parameters
    ----------
    law : ResolutionLaw
        The n points' laws.
    fluence : ndarray
        (n,) fluence per projection, photons/m².
    n_proj : ndarray
        (n,) projections.
    penalty : ndarray
        (n,) each projection's detector penalty (:func:`resolution_2d`), applied to the dose
        limit.
    voxel_m : ndarray
        (n,) tomographic voxel, metres (no finer than the pixel is used).
    angular_range_deg : ndarray
        (n,) angular range Θ, degrees (at most 360 counts).
    sample_width_m : ndarray
        (n,) the sample's widest extent across the beam D, metres (Crowther's d = D·Θ/(2N)).

    Returns
    -------
    dict
        (n,) arrays: ``dose_3d`` (the dose limit, no finer than the pixel) and ``crowther_d``,
        metres; ``wedge`` (the elongation); ``best_3d`` (the largest of the three limits, dose,
        Crowther and voxel, metres); ``limited_3d`` (the :class:`~twin.workflows.forecast_params.Limit3D` value as a float;
        NaN without a dose limit).
    """
    pixel = law.pixel_m
    voxel_3d = np.maximum(voxel_m, pixel)
    dose_3d = np.maximum(law.dose_limited(fluence * n_proj, total=True) * penalty, pixel)
    theta = np.deg2rad(np.minimum(angular_range_deg, 360.0))
    crowther_d = sample_width_m * (theta / np.maximum(n_proj, 1)) / 2
    wedge = missing_wedge_elongation(theta)
    best_3d = np.maximum(np.maximum(dose_3d, crowther_d), voxel_3d)
    limit = np.where(dose_3d >= np.maximum(crowther_d, voxel_3d), Limit3D.DOSE,
                     np.where(crowther_d >= voxel_3d, Limit3D.CROWTHER, Limit3D.VOXEL))
    limited_3d = np.where(np.isnan(dose_3d), np.nan, limit.astype(float))
    return {"dose_3d": dose_3d, "crowther_d": crowther_d, "wedge": wedge, "best_3d": best_3d,
            "limited_3d": limited_3d}
