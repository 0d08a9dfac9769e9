"""What limits a forecast's resolution, in words: ``resolution_limited_by`` and
``resolution_3d_limited_by`` (:func:`twin.workflows.forecast.forecast`)."""

from __future__ import annotations

from twin.scenario import Scenario
from twin.workflows.forecast_params import Limit3D

#: Below this fitted exponent k (half of the dose-limited 1/4 of Howells et al. 2009) the
#: simulated resolution is called limited by the reconstruction rather than by the dose.
FLAT_EXPONENT = 0.125

#: ``resolution_3d_limited_by`` of each :class:`~twin.workflows.forecast_params.Limit3D`.
LIMIT_3D_NAMES = {Limit3D.DOSE: "dose (all projections)",
                   Limit3D.CROWTHER: "Crowther (projection count)", Limit3D.VOXEL: "voxel size"}


def limited_by_3d(s: Scenario, values: dict, limit: Limit3D) -> str:
    """What limits the 3D resolution, in words (``resolution_3d_limited_by``).

    Parameters
    ----------
    s : Scenario
        The scenario forecast.
    values : dict
        The forecast's values so far.
    limit : Limit3D
        The term that set the 3D figure.
    """
    k3 = values.get("resolution_exponent_k")
    if limit == Limit3D.DOSE and s.resolution.model == "simulated" and k3 is not None and k3 <= 0:
        return ("each projection's reconstruction (the simulated resolution does not improve "
                "with dose, so neither does the total dose)")
    return LIMIT_3D_NAMES[limit]


def limited_by(s: Scenario, values: dict) -> str:
    """What limits the 2D resolution, in words (``resolution_limited_by``).

    Parameters
    ----------
    s : Scenario
        The scenario forecast.
    values : dict
        The forecast's values (flags, fluence, the simulated law's exponents and turnover).
    """
    k = values.get("resolution_exponent_k")
    f_turn = values.get("resolution_turnover_fluence_photons_per_um2")
    k_hi = values.get("resolution_exponent_k_detector")
    worse = ("no longer improves" if k_hi is None or k_hi > -0.005 else
             f"gets worse with flux (d ∝ F^{-k_hi:+.2f}: count-rate losses and saturation, "
             "or a reconstruction that no longer converges)")
    turn = "" if f_turn is None else (
        f"; above {f_turn:.3g} ph/µm² per projection the twin's simulated resolution {worse}")
    cliff = values.get("resolution_cliff_fluence_photons_per_um2")
    if values["resolution_forecast_m"] is None and "uncalibrated" in values["flags"]:
        return "uncalibrated (see flags)"
    if not values["resolution_resolved"]:
        return (
            f"unresolved: below {cliff:.3g} ph/µm² per projection, the lowest fluence at which "
            "every simulated seed resolved, the twin's reconstructions fail (a cliff, not a "
            "plateau); raise the fluence per projection")
    if values["resolution_forecast_m"] <= values["pixel_size_m"] * (1 + 1e-12):
        return "pixel size"
    if f_turn is not None and values["fluence_photons_per_um2"] > f_turn * (1 + 1e-9):
        return (
            f"detector, not dose (the twin's simulated resolution turns over at {f_turn:.3g} "
            f"ph/µm² per projection and {worse} above it"
            f"{'; the detector saturates at this flux' if values['saturated'] else ''}"
            "; lower the flux per beam or spread it over more beams)")
    if s.resolution.model == "simulated" and k is not None and k < -FLAT_EXPONENT / 2:
        sat = "; the detector saturates at this flux" if values["saturated"] else ""
        return (
            f"detector, not dose (simulated d ∝ F^(−k) with k = {k:.2f}: more photons per "
            f"frame make it worse{sat}"
            "; spread the beam or lower the flux)")
    if s.resolution.model == "simulated" and k is not None and k < FLAT_EXPONENT:
        # the twin's own points say more photons barely help: not the dose
        return (
            f"reconstruction, not dose (simulated d ∝ F^(−k) with k = {k:.2f}: more photons "
            f"barely help; probe, position errors, partial coherence and the pixel set it{turn})")
    if turn:
        return "dose" + turn
    return "dose"
