"""The choice between FBP and TV-regularised iterative reconstruction (what ``twin tomo`` does
by default, and says so)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.core.xp import array_module


@dataclass(frozen=True)
class AlgorithmChoice:
    """The algorithm :func:`choose_algorithm` picked, its options and why."""

    algorithm: str          # "fbp" or "tv"
    nonneg: bool            # positivity prior (the projections are non-negative)
    reason: str             # one sentence for the user


def choose_algorithm(sino, theta_deg) -> AlgorithmChoice:
    """FBP when the angles sample the object fully, else TV-regularised iterative reconstruction.

    FBP needs the half circle covered (a missing wedge no wider than two angular steps) and
    at least half of Crowther's π/2·n angles for an n-pixel-wide projection; with fewer angles
    or a missing wedge its streaks and wedge artefacts dominate and a prior helps (seed 002's 21
    angles over 140.8°; ``twin.tomo.angles.study`` measures the difference). The positivity prior
    is used when the projections themselves are non-negative (to 0.1 % of their peak).

    Parameters
    ----------
    sino : ndarray (n_angles, rows, n)
        Projections.
    theta_deg : array_like (n_angles,)
        Angles in degrees.

    Returns
    -------
    AlgorithmChoice
        The algorithm, whether to use positivity, and the reason in one sentence.
    """
    theta = np.sort(np.mod(np.asarray(theta_deg, dtype=float), 180.0))
    n = sino.shape[-1]
    na = len(np.unique(np.round(theta, 6)))
    gaps = np.diff(np.concatenate([theta, theta[:1] + 180.0]))
    step = 180.0 / max(na, 1)
    wedge = float(gaps.max()) if na > 1 else 180.0
    crowther = math.ceil(math.pi / 2 * n)
    xp = array_module(sino)
    peak = float(xp.abs(sino).max()) if sino.size else 0.0
    nonneg = bool(float(sino.min()) >= -1e-3 * peak) if sino.size else False
    few = na < crowther / 2
    wedged = wedge > 2 * step
    if not (few or wedged):
        return AlgorithmChoice("fbp", False,
                               f"{na} angles cover 180° (largest gap {wedge:.3g}°) and reach at "
                               f"least half of Crowther's {crowther} for {n} px: FBP")
    why = []
    if few:
        why.append(f"{na} angles are under half of Crowther's {crowther} for {n} px")
    if wedged:
        why.append(f"a {wedge:.3g}° missing wedge (angular step {step:.3g}°)")
    return AlgorithmChoice("tv", nonneg, " and ".join(why) + ": FBP would streak, so "
                           "TV-regularised iterative reconstruction"
                           + (" with positivity" if nonneg else ""))
