"""Inverse planning: the best acquisitions that fit a beamtime budget (``twin plan``).

A proposal asks the forecast's question backwards: given N shifts (and perhaps a resolution to
reach), which choices of flux, frame rate, beams, projections, steps … are worth making? The
planner samples the varied scenario fields on a grid (logarithmic for wide positive ranges,
integers for integer fields), evaluates every point with the vectorised forecast
(:func:`twin.workflows.forecast.evaluate`) and the calibrations already shipped or cached
(it never starts a simulation), keeps the feasible points (within the budget, at or below the
target resolution, no feasibility flag) and reduces them to the Pareto front of
(total time, dose, resolution): a point is dropped where another is no worse in all three and
better in one.

Resolution is the 3D forecast (``resolution_3d_forecast_m``) for a 3D scenario and the 2D one
otherwise, both half periods 1/(2f) at the FRC/FSC threshold of the resolution model.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from dataclasses import dataclass, field

import numpy as np

from twin import scenario as _scenario
from twin.core.errors import TwinInputError
from twin.scenario import Scenario
from twin.workflows import calibrate
from twin.workflows import forecast as _forecast
from twin.workflows.forecast_params import ForecastInputs, ProjectionCount

#: Fields whose value the forecast's physical parameters carry in one column and nowhere else:
#: the planner sets the column instead of rebuilding the scenario (the point's calibration is
#: its other fields', evaluated at its own fluence, as in a sweep).
_COLUMNS = {"beam.flux_photons_per_s": "flux_photons_per_s",
            "tomography.n_projections": "n_projections_requested"}
#: Values per varied field on the grid (integers: fewer where the range holds fewer).
POINTS_PER_FIELD = 9
#: Grid points a plan evaluates at most (about 10⁵ points a second in the vectorised forecast).
MAX_POINTS = 200_000


@dataclass(frozen=True)
class Vary:
    """One varied field: its dotted scenario path, its range and whether it takes integers."""

    path: str
    lo: float
    hi: float
    integer: bool

    def values(self, n: int = POINTS_PER_FIELD) -> list:
        """The grid's values: log-spaced for a positive range over a decade or more, else even;
        integers rounded and deduplicated (every integer where the range holds at most ``n``).

        Parameters
        ----------
        n : int
            Values asked for (fewer for integers; one where ``lo == hi``).

        Returns
        -------
        list of float, or list of int for an integer field
            Ascending, in the field's own unit.
        """
        if self.lo == self.hi:
            return [int(self.lo) if self.integer else float(self.lo)]
        if self.integer and self.hi - self.lo + 1 <= n:
            return list(range(int(self.lo), int(self.hi) + 1))
        wide = self.lo > 0 and self.hi / self.lo >= 10
        v = np.geomspace(self.lo, self.hi, n) if wide else np.linspace(self.lo, self.hi, n)
        if self.integer:
            return sorted({int(round(x)) for x in v})
        return [float(x) for x in v]


def _field_value(s: Scenario, path: str):
    node = s
    for part in path.split("."):
        node = getattr(node, part)
    return node


def _is_integer_field(s: Scenario, path: str) -> bool:
    v = _field_value(s, path)
    return path == "tomography.n_projections" or (isinstance(v, int) and not isinstance(v, bool))


def parse_vary(spec: str, base: Scenario) -> Vary:
    """``FIELD=LO:HI`` → :class:`Vary`, each end checked as a value of the scenario's field.

    Parameters
    ----------
    spec : str
        ``FIELD=LO:HI``: a dotted scenario path (as in ``[sweep]``) and its range, in the
        field's own unit (``beam.flux_photons_per_s=1e9:1e11``).
    base : Scenario
        The scenario each end is set on to check it.

    Returns
    -------
    Vary
        ``integer`` for integer fields and ``tomography.n_projections``.

    Raises
    ------
    TwinInputError
        Field ``--vary``, naming the specification and what is allowed: not of the form, not
        a numeric scenario field (``sweep.*``, booleans, strings and tuples are not), ends
        that are not finite numbers with LO ≤ HI, non-integer ends of an integer field, or an
        end that makes an invalid scenario.
    """
    form = ("FIELD=LO:HI with FIELD a numeric scenario field as a dotted path (as in [sweep], "
            "e.g. beam.flux_photons_per_s=1e9:1e11) and LO ≤ HI")
    path, eq, rng = spec.partition("=")
    lo_s, colon, hi_s = rng.partition(":")
    path = path.strip()
    if not (eq and colon) or not path:
        raise TwinInputError("--vary", spec, form)
    if not _scenario.field_path_exists(path) or path.startswith("sweep"):
        raise TwinInputError("--vary", spec, f"{path!r} is not a scenario field; {form}")
    current = _field_value(base, path)
    if isinstance(current, (bool, str, tuple)) and path != "tomography.n_projections":
        raise TwinInputError("--vary", spec, f"{path} is not numeric; {form}")
    try:
        lo, hi = float(lo_s), float(hi_s)
    except ValueError:
        raise TwinInputError("--vary", spec, f"LO and HI must be numbers; {form}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise TwinInputError("--vary", spec, f"finite numbers with LO ≤ HI; {form}")
    integer = _is_integer_field(base, path)
    if integer and (lo != round(lo) or hi != round(hi)):
        raise TwinInputError("--vary", spec, f"{path} takes integers; {form}")
    for end in (lo, hi):
        try:
            base.with_values({path: int(end) if integer else end})
        except TwinInputError as exc:
            raise TwinInputError("--vary", spec, f"{path} = {end:g} makes an invalid "
                                 f"scenario ({exc})") from None
    return Vary(path, lo, hi, integer)


def default_vary(base: Scenario) -> list[Vary]:
    """What a plan varies when no ``--vary`` is given.

    The flux (from 1/100 of the scenario's up to it: attenuated, as a source gives no more
    than it gives); the frame rate (a tenth of the scenario's, itself capped at the top rate,
    up to the top rate: the detector mode's maximum, or the fastest a fixed
    ``scan.exposure_s`` plus the readout dead time allows); the beams (1 up to the larger of
    9 and the scenario's); and, where ``tomography.n_projections`` is a count (not 0, not
    ``"crowther"``), the projections (max(1, n // 4) to 2n).

    Parameters
    ----------
    base : Scenario
        The scenario planned around.

    Returns
    -------
    list of Vary
    """
    flux = base.beam.flux_photons_per_s
    rate = base.scan.frame_rate_hz
    det = base.detector.resolved()
    top = det.max_frame_rate_hz
    if base.scan.exposure_s is not None:       # a fixed exposure must fit in the frame period
        top = min(top, (1 - 1e-9) / (base.scan.exposure_s + det.readout_dead_time_s))
    out = [Vary("beam.flux_photons_per_s", flux / 100, flux, False),
           Vary("scan.frame_rate_hz", min(rate, top) / 10, top, False),
           Vary("scan.n_beams", 1, max(9, base.scan.n_beams), True)]
    n = base.tomography.n_projections
    if isinstance(n, int) and n > 0:
        out.append(Vary("tomography.n_projections", max(1, n // 4), 2 * n, True))
    return out


def pareto_front(objectives: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of ``objectives`` (n, m), every column minimised.

    A row is dominated where another is ≤ in every column and < in one; NaN counts as +∞.
    Rows are visited in lexicographic order, so a row can be dominated only by one visited
    before it, and (dominance being transitive) by one already on the front: O(n · front).
    Exact duplicates are all kept.

    Parameters
    ----------
    objectives : (n, m) float array_like
        One row per point, one column per objective (any units).

    Returns
    -------
    (k,) int ndarray
        Row indices of the front, ascending.
    """
    obj = np.where(np.isnan(objectives), np.inf, np.asarray(objectives, float))
    order = np.lexsort(obj.T[::-1])
    front: list[int] = []
    for i in order:
        if front:
            f = obj[front]
            dominated = np.all(f <= obj[i], axis=1) & np.any(f < obj[i], axis=1)
            if dominated.any():
                continue
        front.append(int(i))
    return np.array(sorted(front), dtype=int)


def _calibration_for(s: Scenario, base_cal):
    """A structural combination's own calibration where every point of it is shipped or
    cached (reading it starts no simulation), else the base scenario's; and which it is."""
    from twin.workflows import simres

    if base_cal is None:
        return None, None
    # one point first: most combinations have none, and hashing all of them is the slow part
    first = simres.missing_points(s, 1, factors=simres.CALIBRATION_FACTORS[:1])
    if first == 0 and simres.missing_points(s, s.resolution.calibration_seeds) == 0:
        return calibrate.calibration(s), "own"
    return base_cal, "base scenario's, at this point's fluence"


def _base_calibration(base: Scenario):
    """The scenario's calibration, which must be shipped or cached (a plan never simulates)."""
    from twin.workflows import simres

    if base.resolution.model != "simulated":
        return None
    missing = simres.missing_points(base, base.resolution.calibration_seeds)
    if missing:
        raise TwinInputError("resolution.model", "simulated", (
            f"the scenario's simulated calibration is neither shipped nor cached ({missing} "
            "patches missing) and a plan starts no simulation: run `twin calibrate` on it "
            "once (it prints the cost, then simulates and caches them), or plan with a "
            "closed-form resolution.model (howells, rose, pixel)"))
    return calibrate.calibration(base)


@dataclass
class _Grid:
    """Evaluated grid points: one row per point (``params``: one block of rows per
    combination of the structural fields)."""

    values: list[dict] = field(default_factory=list)      # varied path → value
    params: list = field(default_factory=list)            # ForecastInputs per combination
    combo: list[int] = field(default_factory=list)        # index into calibrations
    calibrations: list = field(default_factory=list)      # (calibration, which) per combination
    invalid: int = 0                                     # points that make no valid scenario


def _evaluate_grid(base: Scenario, varies: list[Vary], n: int) -> _Grid:
    """Physical parameters of every grid point: one scenario per combination of the
    structural fields, the column fields set on copies of its parameters."""
    cols = [v for v in varies if v.path in _COLUMNS
            and not (v.path == "tomography.n_projections" and (not base.is_3d or v.lo < 1))]
    struct = [v for v in varies if v not in cols]
    col_grid = list(itertools.product(*(v.values(n) for v in cols)))
    base_cal = _base_calibration(base)
    g = _Grid()
    for combo in itertools.product(*(v.values(n) for v in struct)):
        sv = {v.path: x for v, x in zip(struct, combo)}
        try:
            sc = base.with_values(sv) if sv else base
        except TwinInputError:
            g.invalid += len(col_grid)
            continue
        cal, which = (_calibration_for(sc, base_cal) if sv
                      else (base_cal, "own" if base_cal is not None else None))
        g.calibrations.append((cal, which))
        ratio = float(cal.compression_ratio) if cal is not None else math.nan
        p = dataclasses.replace(_forecast.physical_parameters(sc, cal), compression_ratio=ratio)
        g.params.append(_set_columns(p.repeat(len(col_grid)), cols, col_grid))
        for point in col_grid:
            g.values.append({**sv, **{v.path: x for v, x in zip(cols, point)}})
            g.combo.append(len(g.calibrations) - 1)
    return g


def _set_columns(p: ForecastInputs, cols: list[Vary], col_grid: list[tuple]) -> ForecastInputs:
    """``p`` (one row per point of ``col_grid``) with the column fields ``cols`` set to the
    grid's values; a projection count set this way is a given count (``cols`` holds
    ``tomography.n_projections`` only from 1 up)."""
    changes = {_COLUMNS[v.path]: np.array([pt[j] for pt in col_grid], dtype=float)
               for j, v in enumerate(cols)}
    if "n_projections_requested" in changes:
        changes["projections"] = np.full(len(p), ProjectionCount.GIVEN)
    return dataclasses.replace(p, **changes) if changes else p


@dataclass
class Plan:
    """The answer of :func:`plan`.

    ``points``: the Pareto front of the feasible points, fastest first, each a forecast's
    values (the keys of ``twin forecast --json``) plus the varied fields' paths and
    ``resolution_calibration`` (whose simulated calibration gave its resolution).
    """

    points: list[dict]
    varied: list[Vary]
    n_evaluated: int
    n_feasible: int
    budget_shifts: float
    target_resolution_m: float | None
    seconds: float
    #: (shifts, resolution_m) of every feasible point, for the plot
    feasible_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    #: grid points whose values make no valid scenario (e.g. an exposure longer than the frame)
    n_invalid: int = 0


def objective_resolution(out: dict) -> np.ndarray:
    """The resolution a plan minimises: the 3D forecast where it is finite, else the 2D.

    Parameters
    ----------
    out : dict of str to array_like
        Forecast columns (:func:`twin.workflows.forecast.evaluate`) holding at least
        ``resolution_3d_forecast_m`` and ``resolution_forecast_m``, metres.

    Returns
    -------
    (n,) float ndarray
        Half-period resolution per point, metres.
    """
    r3 = np.asarray(out["resolution_3d_forecast_m"], float)
    return np.where(np.isfinite(r3), r3, np.asarray(out["resolution_forecast_m"], float))


def feasible_mask(out: dict, budget_shifts: float,
                  target_resolution_m: float | None = None) -> np.ndarray:
    """Points within ``budget_shifts`` (total time, overheads included), at or below the
    target resolution (if any) and with no feasibility flag.

    Parameters
    ----------
    out : dict of str to array_like
        Forecast columns (:func:`twin.workflows.forecast.evaluate`): ``total_time_s``,
        seconds, the boolean keys of ``forecast.FLAG_KEYS`` and the resolutions, metres.
    budget_shifts : float
        Beamtime in 8-hour shifts (``forecast.SHIFT_S`` seconds each).
    target_resolution_m : float or None
        Half-period resolution a point must reach (:func:`objective_resolution`), metres
        (None: no target).

    Returns
    -------
    (n,) bool ndarray
    """
    ok = np.asarray(out["total_time_s"], float) <= budget_shifts * _forecast.SHIFT_S
    for key in _forecast.FLAG_KEYS.values():
        ok &= ~np.asarray(out[key], bool)
    if target_resolution_m is not None:
        ok &= objective_resolution(out) <= target_resolution_m
    return ok


def plan(base: Scenario, budget_shifts: float, target_resolution_m: float | None = None,
         varies: list[Vary] | None = None, points_per_field: int = POINTS_PER_FIELD) -> Plan:
    """The feasible choices on the Pareto front of (total time, dose, resolution).

    Parameters
    ----------
    base : Scenario
        The scenario whose fields are varied (its ``[sweep]`` is ignored).
    budget_shifts : float
        Beamtime in 8-hour shifts; a point's ``total_time_s`` (overheads included) must fit.
    target_resolution_m : float, optional
        Half-period resolution a point must reach (3D for a 3D scenario), metres.
    varies : list of Vary, optional
        The varied fields (None or empty: :func:`default_vary`).
    points_per_field : int
        Grid values per varied field (:meth:`Vary.values`).

    Returns
    -------
    Plan
        The Pareto front of the feasible points, fastest first (empty where no point is
        feasible or none makes a valid scenario).

    Raises
    ------
    TwinInputError
        A budget or target that is not a positive finite number; a field varied twice; more
        than :data:`MAX_POINTS` grid points; a simulated calibration of the base scenario that
        is neither shipped nor cached (``resolution.model``).
    """
    if not (math.isfinite(budget_shifts) and budget_shifts > 0):
        raise TwinInputError("--budget-shifts", budget_shifts, "a positive number of shifts")
    if target_resolution_m is not None and not (math.isfinite(target_resolution_m)
                                                and target_resolution_m > 0):
        raise TwinInputError("--target-resolution-nm", target_resolution_m, "a positive length")
    t0 = time.perf_counter()
    base = base.model_copy(update={"sweep": {}})
    varies = list(varies) if varies else default_vary(base)
    paths = [v.path for v in varies]
    if len(set(paths)) != len(paths):
        raise TwinInputError("--vary", paths, "each field at most once")
    size = math.prod(len(v.values(points_per_field)) for v in varies)
    if size > MAX_POINTS:
        raise TwinInputError("--vary", paths, f"at most {MAX_POINTS:,} grid points ({size:,} "
                             "asked): vary fewer fields")
    g = _evaluate_grid(base, varies, points_per_field)
    if not g.values:
        return Plan([], varies, 0, 0, budget_shifts, target_resolution_m,
                    time.perf_counter() - t0, n_invalid=g.invalid)
    out = _forecast.evaluate(_forecast.stack(g.params))
    ok = feasible_mask(out, budget_shifts, target_resolution_m)
    idx = np.flatnonzero(ok)
    res = objective_resolution(out)
    obj = np.stack([out["total_time_s"][idx], out["dose_gy"][idx], res[idx]], axis=1)
    front = idx[pareto_front(obj)] if len(idx) else idx
    front = front[np.argsort(out["total_time_s"][front], kind="stable")]
    pts = [_point(base, g, int(i)) for i in front]
    return Plan(pts, varies, len(g.values), len(idx), budget_shifts, target_resolution_m,
                time.perf_counter() - t0,
                np.stack([out["shifts"][idx], res[idx]], axis=1), g.invalid)


def _point(base: Scenario, g: _Grid, i: int) -> dict:
    """The full forecast of grid point ``i`` (the keys of ``twin forecast --json``), with its
    varied values, from its combination's calibration (no simulation)."""
    values = g.values[i]
    cal, which = g.calibrations[g.combo[i]]
    s = base.with_values(values)
    d = _forecast.forecast(s, sim=cal).as_dict()
    d["resolution_calibration"] = which or "none (closed-form resolution model)"
    d.update(values)
    return d


def plot_front(result: Plan, path) -> None:
    """PNG of the plan: every feasible point (grey) and the Pareto front coloured by
    log₁₀ dose, resolution (nm) against shifts; written atomically to ``path``.

    Parameters
    ----------
    result : Plan
        What :func:`plan` returned.
    path : str or os.PathLike
        The PNG file (replaced whole, or left as it was on failure).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from twin.io.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    xy = result.feasible_xy
    if len(xy):
        ax.scatter(xy[:, 0], xy[:, 1] * 1e9, s=6, c="0.8", label="feasible")
    if result.points:
        x = [p["shifts"] for p in result.points]
        y = [objective_resolution({k: np.array([p[k] if p[k] is not None else np.nan])
                                   for k in ("resolution_3d_forecast_m",
                                             "resolution_forecast_m")})[0] * 1e9
             for p in result.points]
        dose = np.log10([max(p["dose_gy"], 1e-30) for p in result.points])
        sc = ax.scatter(x, y, s=16, c=dose, cmap="viridis", label="Pareto front")
        fig.colorbar(sc, ax=ax, label="log₁₀ dose (Gy)")
    ax.axvline(result.budget_shifts, color="k", ls="--", lw=1, label="budget")
    if result.target_resolution_m is not None:
        ax.axhline(result.target_resolution_m * 1e9, color="r", ls=":", lw=1, label="target")
    ax.set_xscale("log")
    if len(xy) and np.nanmax(xy[:, 1]) > 10 * np.nanmin(xy[:, 1]):
        ax.set_yscale("log")
    ax.set_xlabel("beamtime (8-hour shifts, overheads included)")
    ax.set_ylabel("resolution (nm, half period)")
    ax.legend(loc="best", fontsize="small")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


#: Rows of the human-readable table at most (spread evenly over the front, fastest first).
TABLE_ROWS = 25


def table(result: Plan) -> list[str]:
    """The plan as text lines: what was asked, the conventions, and the front (or a sample of
    it, spread from fastest to slowest).

    Parameters
    ----------
    result : Plan
        What :func:`plan` returned.

    Returns
    -------
    list of str
        At most :data:`TABLE_ROWS` rows of points, besides the header lines.
    """
    from twin.core.formatting import format_value

    paths = [v.path for v in result.varied]
    target = ("" if result.target_resolution_m is None
              else f", target {result.target_resolution_m * 1e9:g} nm")
    pts = result.points
    out = [f"Plan: budget {result.budget_shifts:g} shifts (8 h each, overheads included)"
           f"{target}; varied: "
           + ", ".join(f"{v.path} {v.lo:g}–{v.hi:g}" for v in result.varied),
           f"  {result.n_evaluated} grid points in {result.seconds:.2f} s, {result.n_feasible} "
           f"feasible, {len(pts)} on the Pareto front of (time, dose, resolution)"
           + (f"; {result.n_invalid} more make no valid scenario" if result.n_invalid else "")]
    if not pts:
        return out
    threshold = pts[0].get("resolution_threshold", "half-bit")
    is_3d = pts[0].get("resolution_3d_forecast_m") is not None
    out.append(f"  resolution: {'3D' if is_3d else '2D'} forecast, half period 1/(2f) at the "
               f"{threshold} threshold's crossing; model: {pts[0].get('resolution_model')}")
    approx = sum(p.get("resolution_calibration", "").startswith("base") for p in pts)
    if approx:
        out.append(f"  {approx} of the {len(pts)} points take their resolution from the "
                   "scenario's own calibration at their fluence (no simulated calibration of "
                   "their other varied values is shipped or cached): an approximation")
    if len(pts) > TABLE_ROWS:
        pick = np.unique(np.round(np.linspace(0, len(pts) - 1, TABLE_ROWS)).astype(int))
        out.append(f"  showing {len(pick)} of the {len(pts)} points, fastest to slowest "
                   "(--json lists all)")
        pts = [pts[i] for i in pick]
    res_key = "resolution_3d_forecast_m" if is_3d else "resolution_forecast_m"
    head = paths + ["shifts", "dose_gy", res_key, "data_volume_bytes"]
    rows = [[f"{p[k]:.4g}" if k in paths else
             (f"{p[k]:.3g}" if k == "shifts" else format_value(k, p[k])) for k in head]
            for p in pts]
    widths = [max(len(h), *(len(r[j]) for r in rows)) for j, h in enumerate(head)]
    out.append("  " + "  ".join(h.rjust(w) for h, w in zip(head, widths)))
    out += ["  " + "  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    return out
