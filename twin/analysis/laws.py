"""Resolution laws: d(F), the resolution against the fluence per projection, and its fit.

Pure functions over NumPy arrays, with no simulation behind them: the workflow that simulates
the points (:mod:`twin.workflows.simres`) and the forecast that reads the law
(:mod:`twin.workflows.forecast`) both use them.

- :class:`Calibration`: d(F) fitted to simulated points, d₀·(F/F₀)^(−k) on the dose-limited
  side, turning over into a detector-limited side above ``f_turn``;
- :func:`simulated_law`: that curve from its parameters, elementwise;
- :func:`fit_calibration`: the curve from points sorted by fluence;
- :func:`fit_power_law`, :func:`dose_limited_points`, :func:`cliff_fluence`: its parts.

Fluences are photons per m² of one projection; resolutions are half periods in metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.core.errors import TwinInputError


@dataclass(frozen=True)
class Calibration:
    """d(F) fitted to simulated points (``resolution.model = "simulated"``).

    On the dose-limited side d(F) = d₀·(F/F₀)^(−k). Where more photons per frame make the
    twin's own points worse (count-rate losses, counter overflow: a detector limit), the curve
    turns over at ``f_turn_photons_per_m2``, the last dose-limited point, and above it follows
    d_t·(F/F_t)^(−k_high) with k_high < 0 through the worse points: the power law of the
    dose-limited side is never extrapolated into the detector-limited side.

    Attributes
    ----------
    d0_m, d0_std_m : float
        Dose-limited law at the scenario's fluence F₀ and its standard error, metres.
    k, k_std : float
        Dose-limited exponent and its standard error (Howells et al. 2009 predict k = 1/4 in
        the dose-limited regime; k → 0 where the pixel or the probe limit it).
    f0_photons_per_m2 : float
        The scenario's fluence per projection.
    points : list of (fluence, resolution)
        The simulated points.
    f_turn_photons_per_m2 : float
        Turnover fluence (inf: no turnover within the simulated points).
    k_high : float
        Exponent above the turnover (NaN without one).
    resolved : list of bool
        Per point: the reconstruction converged for at least one seed (False: a bound).
    seeds : int
        Seeds simulated per fluence.
    all_resolved : list of bool
        Per point: every seed's reconstruction converged. The law is fitted over these only.
    """

    d0_m: float
    d0_std_m: float
    k: float
    k_std: float
    f0_photons_per_m2: float
    points: list
    f_turn_photons_per_m2: float = math.inf
    k_high: float = math.nan
    resolved: list = ()
    compression_ratio: float = math.nan
    seeds: int = 1
    all_resolved: list = ()
    source: str = ""            # another scenario's calibration, read at this one's fluence

    def resolved_fluences(self) -> list:
        """Fluences of the points whose reconstruction converged (all, if not recorded).

        Returns
        -------
        list of float
            Fluences, photons/m², in the order of :attr:`points`.
        """
        flags = list(self.resolved) or [True] * len(self.points)
        return [f for (f, _), ok in zip(self.points, flags) if ok]

    def fully_resolved_fluences(self) -> list:
        """Fluences at which every seed's reconstruction converged.

        Falls back to :attr:`resolved`, then to all points, where the flags are not recorded.

        Returns
        -------
        list of float
            Fluences, photons/m², in the order of :attr:`points`.
        """
        flags = list(self.all_resolved) or list(self.resolved) or [True] * len(self.points)
        return [f for (f, _), ok in zip(self.points, flags) if ok]

    def cliff_fluence(self) -> float:
        """The lowest simulated fluence at which every seed resolves, above the highest one
        at which some seed failed (NaN where no point below a resolved one failed): below it,
        the curve is a cliff, not a plateau, and the law is not used.

        Returns
        -------
        float
            Photons/m² (:func:`cliff_fluence`), or NaN.
        """
        return cliff_fluence([f for f, _ in self.points],
                             list(self.all_resolved) or list(self.resolved)
                             or [True] * len(self.points))

    def resolution_m(self, fluence_photons_per_m2):
        """The calibrated d at fluence F (vectorised), both sides of a turnover.

        Parameters
        ----------
        fluence_photons_per_m2 : float or array_like
            Fluence per projection F, photons/m².

        Returns
        -------
        numpy.ndarray
            Half-period resolution d, metres (:func:`simulated_law`), shaped like the input.
        """
        return simulated_law(np.asarray(fluence_photons_per_m2, float), self.d0_m,
                             self.f0_photons_per_m2, self.k, self.f_turn_photons_per_m2,
                             self.k_high)


def cliff_fluence(fluences, all_resolved) -> float:
    """The cliff of a calibration: the lowest fluence at which every seed resolves, above the
    highest fluence at which some seed failed while a higher fluence resolved in every seed.

    Parameters
    ----------
    fluences : sequence of float
        Simulated fluences, photons/m².
    all_resolved : sequence of bool
        Per fluence: every seed's reconstruction converged.

    Returns
    -------
    float
        The cliff fluence, or NaN where no failure lies below a fully resolved point (a failure
        at the highest fluences is the detector's turnover, not a cliff).
    """
    order = np.argsort(np.asarray(fluences, float))
    fl = np.asarray(fluences, float)[order]
    ok = np.asarray(all_resolved, bool)[order]
    good = np.flatnonzero(ok)
    if len(good) == 0:
        return math.nan
    failed_below = np.flatnonzero(~ok[:good[-1]])
    if len(failed_below) == 0:
        return math.nan
    return float(fl[good[good > failed_below[-1]][0]])


def simulated_law(f, d0, f0, k, f_turn=math.inf, k_high=math.nan):
    """d(F) of a :class:`Calibration` from its parameters, elementwise over arrays of any of
    them (the forecast evaluates a sweep's points at once): d₀·(F/F₀)^(−k) up to ``f_turn``,
    d_t·(F/F_t)^(−k_high) above it.

    d_t = d₀·(F_t/F₀)^(−k) keeps the law continuous at the turnover.

    Parameters
    ----------
    f : float or array_like
        Fluence F, photons/m².
    d0 : float or array_like
        Resolution d₀ at F₀, metres.
    f0 : float or array_like
        Reference fluence F₀, photons/m².
    k : float or array_like
        Exponent below the turnover.
    f_turn : float or array_like
        Turnover fluence F_t, photons/m² (inf: none).
    k_high : float or array_like
        Exponent above the turnover.

    Returns
    -------
    numpy.ndarray
        d(F), metres (broadcast shape).
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        low = d0 * (f / f0) ** -k
        d_turn = d0 * (f_turn / f0) ** -k
        return np.where(f > f_turn, d_turn * (f / f_turn) ** -k_high, low)


#: Relative margin by which a simulated point must be worse than the best point at a lower
#: fluence to mark the turnover into a detector-limited regime: twice the largest seed-to-seed
#: scatter measured at a seed scenario's own fluence (three seeds each: Siemens star 4.5 %,
#: 3 kHz brain 15 %), so seed noise alone rarely triggers it with one seed per fluence.
TURNOVER_MARGIN = 0.3


def dose_limited_points(d: np.ndarray, bound: np.ndarray) -> int:
    """How many of the points (sorted by fluence) lie on the dose-limited side.

    Points are ``d`` (resolutions) with ``bound`` (the reconstruction did not converge: a lower
    bound). Unconverged points below the first resolved one are starved of photons and stay on
    the dose side (they are left out of the fit); the side ends before the first point — a
    resolved one worse than the best before it by :data:`TURNOVER_MARGIN`, or an unconverged
    one — above a resolved point. Returns the number of points on the dose side (len(d): no
    turnover).

    Parameters
    ----------
    d : array_like (n,)
        Resolutions, metres, sorted by increasing fluence.
    bound : array_like of bool (n,)
        True where the reconstruction did not converge.

    Returns
    -------
    int
        Number of leading points on the dose-limited side, 0 … n.
    """
    best = math.inf
    for i, (di, bi) in enumerate(zip(d, bound)):
        if bi:
            if math.isfinite(best):
                return i
            continue
        if di > best * (1 + TURNOVER_MARGIN):
            return i
        best = min(best, float(di))
    return len(d)


def fit_power_law(fluence: np.ndarray, d: np.ndarray, f0: float) -> tuple[float, float,
                                                                         float, float]:
    """Least-squares fit of log d = log d₀ − k·log(F/F₀): (d₀, σ(d₀), k, σ(k)).

    Points with a non-finite logarithm are dropped. σ(d₀) is d₀·σ(log d₀); both σ are NaN with
    exactly two points (they fit exactly).

    Parameters
    ----------
    fluence : array_like (n,)
        Fluences F, photons/m².
    d : array_like (n,)
        Resolutions, metres.
    f0 : float
        Reference fluence F₀, photons/m².

    Returns
    -------
    (float, float, float, float)
        d₀ (metres), its standard error, k and its standard error.

    Raises
    ------
    ValueError
        With fewer than two usable points or all at one fluence.
    """
    x = np.log(np.asarray(fluence, float) / f0)
    y = np.log(np.asarray(d, float))
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 2 or np.ptp(x) == 0:
        raise ValueError("need simulated points at two or more fluences")
    a = np.stack([np.ones_like(x), -x], axis=1)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    resid = y - a @ coef
    dof = max(len(x) - 2, 1)
    # two points fit exactly: their spread says nothing about the error (NaN, not 0)
    s2 = float(resid @ resid) / dof if len(x) > 2 else math.nan
    cov = s2 * np.linalg.inv(a.T @ a)
    d0 = float(np.exp(coef[0]))
    return d0, d0 * float(np.sqrt(cov[0, 0])), float(coef[1]), float(np.sqrt(cov[1, 1]))




def _dose_side_fit(fl: np.ndarray, d: np.ndarray, use: np.ndarray, f0: float, seeds: int,
                   d_std: np.ndarray | None) -> tuple[float, float, float, float]:
    """(d₀, σ(d₀), k, σ(k)) over the points ``use`` of the dose-limited side."""
    if len(np.unique(fl[use])) < 2:
        # one dose-limited fluence: no slope to fit, the curve is flat up to it
        return float(np.exp(np.mean(np.log(d[use])))), math.nan, 0.0, math.nan
    d0, d0_sd, k, k_sd = fit_power_law(fl[use], d[use], f0)
    # with several seeds, the spread of the point at F0 over them bounds the error from
    # below: a fit through few points can pass closer to their means than they are known
    at = np.flatnonzero(use & np.isclose(fl, f0, rtol=1e-9))
    if seeds > 1 and len(at) and d_std is not None:
        d0_sd = float(np.fmax(d0_sd, float(d_std[at[0]]) / math.sqrt(seeds)))  # NaN: the other
    return d0, d0_sd, k, k_sd


def fit_calibration(fluences, d, bound, every, f0: float, seeds: int = 1, d_std=None,
                    compression_ratio: float = math.nan) -> Calibration:
    """The :class:`Calibration` of simulated points sorted by fluence.

    Parameters
    ----------
    fluences : (n,) array of float
        Simulated fluences per projection, photons/m², ascending.
    d : (n,) array of float
        Mean resolution over the seeds at each fluence, metres.
    bound : (n,) array of bool
        The reconstruction converged in no seed (or gave no number): a bound, not a point.
    every : (n,) array of bool
        Every seed's reconstruction converged; the law is fitted over these where it can be.
    f0 : float
        The scenario's own fluence, photons/m² (the law's reference).
    seeds : int
        Seeds per fluence.
    d_std : (n,) array of float, optional
        Standard deviation over seeds at each fluence, metres: floors σ(d₀) with several seeds.
    compression_ratio : float
        Raw over compressed size of the frames at ``f0``, kept on the calibration.

    Returns
    -------
    Calibration

    Raises
    ------
    TwinInputError
        Fewer than two fluences converged: no law to fit (``resolution.model``).
    """
    fl, d = np.asarray(fluences, float), np.asarray(d, float)
    bound, every = np.asarray(bound, bool), np.asarray(every, bool)
    if len(np.unique(fl[~bound])) < 2:
        raise TwinInputError("resolution.model", "simulated", (
            f"the reconstruction did not converge at {int(bound.sum())} of {len(bound)} "
            "calibration fluences (too few photons per frame?): no resolution to fit"))
    n_dose = dose_limited_points(d, bound)
    low = np.arange(len(d)) < n_dose
    use = low & every
    if not use.any():           # no dose-side point resolved in every seed: the partial ones
        use = low & ~bound
    d0, d0_sd, k, k_sd = _dose_side_fit(fl, d, use, f0, seeds, d_std)
    f_turn, k_high = math.inf, math.nan
    if n_dose < len(d):
        f_turn = float(fl[use][-1])
        d_turn = d0 * (f_turn / f0) ** (-k)
        hi = ~low & np.isfinite(d) & (fl > f_turn)
        # through (F_t, d_t), least squares in log–log over the worse points (an unconverged
        # point enters with its bound: the curve is at least that steep)
        x = np.log(fl[hi] / f_turn)
        y = np.log(d[hi] / d_turn)
        k_high = min(-float(x @ y / (x @ x)), 0.0) if len(x) else 0.0
    return Calibration(d0, d0_sd, k, k_sd, float(f0),
                       [(float(a), float(b)) for a, b in zip(fl, d)], f_turn, k_high,
                       [bool(b) for b in ~bound], compression_ratio, seeds,
                       [bool(b) for b in every])
