"""Calibrating a scenario's simulated d(F): an explicit step, its cost said before any work.

``resolution.model = "simulated"`` forecasts from points that the twin simulates and
reconstructs (:mod:`twin.workflows.simres`): at each of the fluences
:data:`~twin.workflows.simres.CALIBRATION_FACTORS` × F₀ and for each of
``resolution.calibration_seeds`` seeds, one patch (:func:`~twin.workflows.patch.patch_scenario`)
is simulated and reconstructed three times (all its frames, and each of two halves). A forecast
never does that work (:func:`calibration` reads shipped or cached points, and the forecast
reports a missing calibration);
``twin calibrate`` (and ``twin sweep`` / ``twin run``, which need one) does it, after printing
what it costs from the measured cost model of :mod:`twin.analysis.costs`:

* simulation: frames × the seconds per simulated frame;
* reconstruction: (frames + 2 × frames/2) × iterations × the seconds per frame-iteration.

A limit the user sets (``--max-hours`` / ``--max-calibration-hours``, else the environment's
``TWIN_CALIBRATION_LIMIT_S``) refuses a calibration whose estimated wall time on the local
workers exceeds it (exit status 2, with the estimate).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

from twin.core.errors import TwinInputError
from twin.scenario import Scenario
from twin.workflows.simres import FAMILY_EXCLUDE, SCENARIOS

#: Environment variable: the longest calibration (estimated wall seconds) to start unasked.
LIMIT_ENV = "TWIN_CALIBRATION_LIMIT_S"


@dataclass(frozen=True)
class Cost:
    """What calibrating a scenario would cost (measured cost model, :mod:`twin.analysis.costs`).

    Attributes
    ----------
    points, missing : int
        Simulated points of the calibration (fluences × seeds), and those neither cached nor
        shipped (only these are computed).
    frames : int
        Frames of one point's patch.
    patch_size_m : (float, float)
        The patch's field, x and y.
    point_core_s, point_gpu_s : float
        One point: simulation plus the three reconstructions, core-seconds and GPU-seconds
        (NaN where the device has no measurement).
    workers : int
        Local workers the wall time is estimated for (one point per worker at a time).
    """

    points: int
    missing: int
    frames: int
    patch_size_m: tuple
    point_core_s: float
    point_gpu_s: float
    workers: int

    @property
    def core_hours(self) -> float:
        """Core-hours of the missing points."""
        return self.missing * self.point_core_s / 3600.0

    @property
    def gpu_hours(self) -> float:
        """GPU-hours of the missing points (NaN without a GPU measurement)."""
        return self.missing * self.point_gpu_s / 3600.0

    @property
    def wall_hours(self) -> float:
        """Wall hours of the missing points on :attr:`workers` workers."""
        return self.core_hours / max(1, min(self.workers, max(self.missing, 1)))

    def describe(self) -> str:
        """One sentence: points, patch, frames, hours."""
        x, y = self.patch_size_m
        gpu = (f", {self.gpu_hours:.3g} GPU-hours" if math.isfinite(self.gpu_hours) else "")
        return (f"{self.missing} of {self.points} simulated points to compute (patch "
                f"{x * 1e6:.4g} × {y * 1e6:.4g} µm, {self.frames:,} frames each; simulation and "
                f"three reconstructions: all frames and two halves): about "
                f"{self.core_hours:.3g} core-hours, {self.wall_hours:.3g} h on "
                f"{self.workers} worker(s){gpu} (measured cost model)")


def point_seconds(s: Scenario) -> tuple[int, tuple, float, float]:
    """(frames, patch size, core-seconds, GPU-seconds) of one simulated point of scenario ``s``:
    its patch simulated, then reconstructed from all its frames and from each of two halves.

    Parameters
    ----------
    s : Scenario
        The scenario; its patch is :func:`twin.workflows.patch.patch_scenario`.

    Returns
    -------
    frames : int
        Frames of the patch.
    patch_size_m : (float, float)
        The patch's field, x and y, metres.
    core_s, gpu_s : float
        Seconds of one CPU core and of one GPU for the point (measured cost model; GPU NaN
        where the device has no measurement).
    """
    from twin.geometry import Geometry
    from twin.workflows import patch

    g = Geometry.from_scenario(s)
    ps = patch.patch_scenario(s, g=g)
    gp = Geometry.from_scenario(ps)
    c = cost_params(ps, gp)
    frames = int(gp.frames_per_projection)
    # full reconstruction + two halves of frames/2: twice the frame-iterations of one
    rec_units = 2 * frames * c["rec_iterations"]
    core = frames * c["sim_core_s_per_frame"] + rec_units * c["rec_core_s_per_frame_iteration"]
    gpu = frames * c["sim_gpu_s_per_frame"] + rec_units * c["rec_gpu_s_per_frame_iteration"]
    return frames, (gp.fov_x_m, gp.fov_y_m), float(core), float(gpu)


def workers(n_workers: int | None = None) -> int:
    """Workers a local calibration runs on (as :func:`twin.workflows.simres.measure_many`).

    Parameters
    ----------
    n_workers : int, optional
        Workers asked for; None or 0: two, or one on a single-CPU machine.

    Returns
    -------
    int
    """
    return int(n_workers or min(2, os.cpu_count() or 1))


def estimate(s: Scenario, seeds: int | None = None, n_workers: int | None = None) -> Cost:
    """The cost of calibrating scenario ``s`` (its sweep ignored), counting only the points
    neither cached nor shipped as missing.

    Parameters
    ----------
    s : Scenario
        A ``resolution.model = "simulated"`` scenario.
    seeds : int, optional
        Seeds per fluence; None or 0: ``resolution.calibration_seeds``.
    n_workers : int, optional
        Local workers the wall time is estimated for (:func:`workers`).

    Returns
    -------
    Cost
    """
    from twin.workflows import simres

    base = s.model_copy(update={"sweep": {}})
    seeds = int(seeds or base.resolution.calibration_seeds)
    frames, size, core, gpu = point_seconds(base)
    missing = simres.missing_points(base, seeds)
    return Cost(len(simres.CALIBRATION_FACTORS) * seeds, missing, frames, size, core, gpu,
                workers(n_workers))


def limit_hours(option_hours: float | None = None, field: str = "--max-hours") -> float | None:
    """The user's limit on a calibration's wall time, hours: the option ``field``, else
    ``TWIN_CALIBRATION_LIMIT_S`` (seconds), else none.

    Parameters
    ----------
    option_hours : float, optional
        The option's value, hours; None: not given.
    field : str
        The option's name, for the error message.

    Returns
    -------
    float or None
        The limit in hours; None where neither the option nor the variable is set.

    Raises
    ------
    TwinInputError
        ``option_hours`` is not positive (naming ``field``), or the variable is not a positive
        number of seconds.
    """
    if option_hours is not None:
        if not option_hours > 0:
            raise TwinInputError(field, option_hours, "a positive number of hours")
        return float(option_hours)
    raw = os.environ.get(LIMIT_ENV)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not value > 0:
        raise TwinInputError(LIMIT_ENV, raw, "a positive number of seconds")
    return value / 3600.0


def check_limit(what: str, hours: float, limit_h: float | None, detail: str,
                field: str = "--max-hours") -> None:
    """Refuse work whose estimated wall ``hours`` exceed the user's ``limit_h`` (exit 2).

    Parameters
    ----------
    what : str
        The work, for the message (``"calibrating NAME"``).
    hours : float
        Its estimated wall time, hours.
    limit_h : float or None
        The limit, hours (:func:`limit_hours`); None: no limit, nothing is refused.
    detail : str
        The cost sentence appended to the message.
    field : str
        The option named by the error.

    Raises
    ------
    TwinInputError
        ``hours`` exceeds ``limit_h``.
    """
    if limit_h is not None and hours > limit_h:
        raise TwinInputError(field, f"{limit_h:g} h", "", message=(
            f"{field}: {what} would take about {hours:.3g} h, over the limit of {limit_h:g} h "
            f"(--max-hours / --max-calibration-hours, or {LIMIT_ENV} in seconds): {detail}. "
            "Raise the limit, or run it where the compute is (twin calibrate --scheduler)"))


def missing_message(s: Scenario, cost: Cost) -> str:
    """What ``twin forecast`` says of a scenario whose calibration is not cached (its flag
    ``uncalibrated``: the time, dose and data are forecast, the resolution is not).

    Parameters
    ----------
    s : Scenario
        The scenario (its name is quoted).
    cost : Cost
        What calibrating it would cost (:func:`estimate`).

    Returns
    -------
    str
    """
    return (f"uncalibrated: scenario {s.name!r} forecasts its resolution from a simulated "
            f"calibration that is neither shipped nor cached, and no shipped scenario differs "
            f"from it only in flux, seed or projections: {cost.describe()}. A forecast never "
            "simulates, so its resolution is left empty; calibrate it with `twin calibrate "
            "SCENARIO.toml` (--seeds K, --scheduler ADDRESS, --max-hours H), then forecast "
            "again")


def run(s: Scenario, seeds: int | None = None, scheduler: str | None = None,
        n_workers: int | None = None, max_hours: float | None = None, log=None,
        progress: bool = True):
    """Calibrate scenario ``s`` explicitly: say the cost, check the limit, compute what is
    missing, and return the :class:`~twin.analysis.laws.Calibration`.

    Parameters
    ----------
    s : Scenario
        A ``resolution.model = "simulated"`` scenario (its sweep is ignored).
    seeds : int, optional
        Seeds per fluence (default ``resolution.calibration_seeds``).
    scheduler : str, optional
        Address of a Dask scheduler (default: local workers).
    n_workers : int, optional
        Local workers.
    max_hours : float, optional
        Refuse (TwinInputError) above this estimated wall time (default:
        ``TWIN_CALIBRATION_LIMIT_S``, else no limit).
    log : callable, optional
        Receives the cost sentence before any work starts.
    progress : bool
        Show a progress bar while points are computed (none when nothing is missing).

    Returns
    -------
    twin.analysis.laws.Calibration

    Raises
    ------
    TwinInputError
        ``resolution.model`` is not ``"simulated"``, ``seeds`` is outside 1–16, or the
        estimate exceeds the limit.
    """
    if s.resolution.model != "simulated":
        raise TwinInputError("resolution.model", s.resolution.model,
                             'a calibration is simulated for resolution.model = "simulated"')
    if seeds is not None and not 1 <= seeds <= 16:
        raise TwinInputError("--seeds", seeds, "an integer from 1 to 16")
    base = s.model_copy(update={"sweep": {}})
    if seeds is not None:
        base = base.with_values({"resolution.calibration_seeds": int(seeds)})
    cost = estimate(base, n_workers=n_workers)
    if log:
        log(f"calibration of {s.name}: {cost.describe()}")
    check_limit(f"calibrating {s.name}", cost.wall_hours, limit_hours(max_hours),
                cost.describe())
    return calibration(base, simulate=True, scheduler=scheduler, n_workers=n_workers,
                       progress=progress and cost.missing > 0)


def volume_point_seconds(s: Scenario) -> tuple[int, int, float, float]:
    """(projections, frames per projection, core-seconds, GPU-seconds) of one simulated
    sub-volume of 3D scenario ``s`` (:func:`twin.workflows.simvol.sub_volume`): each projection
    simulated and reconstructed once. Alignment and tomography cost little beside them; the
    truth's projections (``simvol.TRUTH_OVERSAMPLING`` × π/2 × the width's voxels, each through
    the phantom) are not priced: ~1 s an angle for the IC's voxels since they use the plate's
    own pixels (~20 min of one core for the 21-angle IC's sub-volume, measured), little for the
    analytic fibres.

    Parameters
    ----------
    s : Scenario
        A 3D scenario (:func:`~twin.workflows.simvol.sub_volume` raises TwinInputError for
        any other).

    Returns
    -------
    projections, frames : int
        Projections of the sub-volume, and frames of each.
    core_s, gpu_s : float
        Seconds of one CPU core and of one GPU for the whole sub-volume (GPU NaN where the
        device has no measurement).
    """
    from twin.geometry import Geometry
    from twin.workflows import simvol

    sub = simvol.sub_volume(s)
    g = Geometry.from_scenario(sub.scenario)
    frames = int(g.frames_per_projection)
    core = gpu = 0.0
    for a in simvol.projection_angles(sub.scenario, sub.n_angles):
        c = cost_params(sub.scenario, g, float(a))     # a tilted plate: more slices to simulate
        per = frames * c["rec_iterations"]
        core += frames * c["sim_core_s_per_frame"] + per * c["rec_core_s_per_frame_iteration"]
        gpu += frames * c["sim_gpu_s_per_frame"] + per * c["rec_gpu_s_per_frame_iteration"]
    return sub.n_angles, frames, float(core), float(gpu)


def run_volume(s: Scenario, seeds: int | None = None, scheduler: str | None = None,
               n_workers: int | None = None, max_hours: float | None = None, log=None,
               progress: bool = True, factors: tuple[float, ...] | None = None):
    """Calibrate the 3D resolution of scenario ``s`` on simulated sub-volumes
    (:func:`twin.workflows.simvol.calibrate_volume`): say the cost, check the limit, compute
    the missing volumes (one Dask task per projection), and return the
    :class:`~twin.workflows.simvol.VolumeCalibration`.

    Parameters
    ----------
    s : Scenario
        A 3D scenario (its sweep is ignored).
    seeds : int, optional
        Seeds per fluence; None: ``resolution.calibration_seeds``.
    scheduler : str, optional
        Address of a Dask scheduler (default: local workers).
    n_workers : int, optional
        Local workers (:func:`workers`); the wall time is estimated for them.
    max_hours : float, optional
        Refuse above this estimated wall time, hours (default: ``TWIN_CALIBRATION_LIMIT_S``,
        else no limit).
    log : callable, optional
        Receives the cost sentence before any work starts.
    progress : bool
        Show a progress bar while volumes are computed (none when nothing is missing).
    factors : tuple of float, optional
        Fluence factors × the scenario's (default
        :data:`~twin.workflows.simvol.VOLUME_FACTORS`).

    Returns
    -------
    twin.workflows.simvol.VolumeCalibration or None

    Raises
    ------
    TwinInputError
        ``seeds`` is outside 1–16, ``s`` is not 3D, or the estimate exceeds the limit.
    """
    from twin.workflows import simvol

    if seeds is not None and not 1 <= seeds <= 16:
        raise TwinInputError("--seeds", seeds, "an integer from 1 to 16")
    base = s.model_copy(update={"sweep": {}})
    seeds = int(seeds or base.resolution.calibration_seeds)
    n, frames, core, gpu = volume_point_seconds(base)
    factors = tuple(factors or simvol.VOLUME_FACTORS)
    missing = len(simvol.volume_points_missing(base, seeds, factors))
    total = len(factors) * seeds
    w = workers(n_workers)
    hours = missing * core / 3600.0 / w
    gpu_txt = f", {missing * gpu / 3600:.3g} GPU-hours" if math.isfinite(gpu) else ""
    detail = (f"{missing} of {total} simulated sub-volumes to compute ({n} projections of "
              f"{frames:,} frames each): about {missing * core / 3600:.3g} core-hours, "
              f"{hours:.3g} h on {w} worker(s){gpu_txt} (measured cost model)")
    if log:
        log(f"3D calibration of {s.name}: {detail}")
    check_limit(f"calibrating {s.name}'s volumes", hours, limit_hours(max_hours), detail)
    return simvol.calibrate_volume(base, seeds, factors, scheduler=scheduler, n_workers=w,
                                   progress=progress and missing > 0)


def cost_params(s: Scenario, g, angle_deg: float = 0.0) -> dict[str, float]:
    """Measured seconds per simulated frame and per reconstructed frame-iteration
    (:mod:`twin.analysis.costs`), on a CPU core and on a GPU, of scenario ``s`` (geometry ``g``).

    Parameters
    ----------
    s : Scenario
        The scenario simulated and reconstructed.
    g : twin.geometry.Geometry
        Its geometry (``Geometry.from_scenario(s)``).
    angle_deg : float
        Rotation of the sample: the simulation's multislice slices follow the path through it
        (:meth:`~twin.geometry.Geometry.multislice_slices`); the reconstruction's do not.

    Returns
    -------
    dict
        ``sim_core_s_per_frame``, ``sim_gpu_s_per_frame``, ``rec_core_s_per_frame_iteration``,
        ``rec_gpu_s_per_frame_iteration`` (seconds) and ``rec_iterations``.
    """
    from twin.analysis import costs
    from twin.geometry import reconstruction_options

    opts = reconstruction_options(s)
    sim = costs.simulation_work(g.oversampling ** 2 * g.n_native, g.n_beams, g.blur_samples(s),
                                g.simulated_modes(s), g.multislice_slices(s, angle_deg))
    rec = costs.reconstruction_work(g.n_native, g.n_beams,
                                    opts.modes or g.simulated_modes(s), max(opts.slices, 1))
    return {
        "sim_core_s_per_frame": costs.seconds_per_unit(sim, "simulation", "cpu"),
        "sim_gpu_s_per_frame": costs.seconds_per_unit(sim, "simulation", "gpu"),
        "rec_core_s_per_frame_iteration": costs.seconds_per_unit(rec, "reconstruction", "cpu"),
        "rec_gpu_s_per_frame_iteration": costs.seconds_per_unit(rec, "reconstruction", "gpu"),
        "rec_iterations": float(opts.iterations),
    }


_CALIBRATIONS: dict = {}


def calibration(s: Scenario, simulate: bool = False, scheduler: str | None = None,
                n_workers: int | None = None, progress: bool = False):
    """The simulated d(F) calibration of scenario ``s`` (``resolution.model = "simulated"``).

    Read from its simulated points, shipped with twin or cached on disk by
    :mod:`twin.workflows.simres`, and kept in memory here. A forecast never simulates: where
    points are missing and ``simulate`` is false, this returns :func:`family_calibration`
    (a shipped scenario that differs only in flux, seed or projections), or None, which the
    forecast reports with the flag ``uncalibrated`` and the cost (:func:`missing_message`).
    With ``simulate`` (the explicit step, :func:`run`) the missing points are computed, on
    ``scheduler`` or ``n_workers`` local workers.

    Parameters
    ----------
    s : Scenario
        A ``resolution.model = "simulated"`` scenario; its name, description, sweep and
        beamtime do not change the calibration.
    simulate : bool
        Compute the missing points (else return the family's calibration, or None).
    scheduler : str, optional
        Address of a Dask scheduler (default: local workers).
    n_workers : int, optional
        Local workers; None: two, or one on a single-CPU machine.
    progress : bool
        Show a progress bar while points are computed.

    Returns
    -------
    twin.analysis.laws.Calibration or None
    """
    from twin.workflows import simres

    key = s.model_dump_json(exclude={"name", "description", "sweep", "beamtime"})
    if key not in _CALIBRATIONS:
        base = s.model_copy(update={"sweep": {}})
        seeds = s.resolution.calibration_seeds
        if not simulate and simres.missing_points(base, seeds):
            # the same experiment at another flux or seed: its shipped d(F), read at this
            # scenario's fluence (as a sweep does); else no resolution, said by a flag
            return family_calibration(s)
        _CALIBRATIONS[key] = simres.calibrate(base, seeds=seeds, scheduler=scheduler,
                                              n_workers=n_workers, progress=progress)
    return _CALIBRATIONS[key]


def family_calibration(s: Scenario):
    """The calibration of a shipped scenario that is ``s`` but for its flux, seed or projections
    (its d(F) is read at ``s``'s own fluence, the fluence range it was simulated over stated by
    ``resolution_extrapolated``), or None where no shipped scenario is.

    Parameters
    ----------
    s : Scenario
        The scenario; shipped scenarios are compared with it, all fields but
        :data:`~twin.workflows.simres.FAMILY_EXCLUDE`.

    Returns
    -------
    twin.analysis.laws.Calibration or None
        The shipped calibration, its ``source`` the shipped scenario's name.
    """
    from twin.scenario import load
    from twin.workflows import simres

    key = s.model_dump_json(exclude=FAMILY_EXCLUDE)
    for path in sorted(SCENARIOS.glob("*.toml")):
        other = load(path)
        if (other.resolution.model == "simulated"
                and other.model_dump_json(exclude=FAMILY_EXCLUDE) == key
                and not simres.missing_points(other, other.resolution.calibration_seeds)):
            cal = calibration(other)
            return dataclasses.replace(cal, source=other.name)
    return None


def compression_ratio(s: Scenario) -> float:
    """Raw/bitshuffle-LZ4 size of the scenario's simulated frames: those of its calibration
    point at its own fluence (``resolution.model = "simulated"``; NaN otherwise).

    Where the calibration is a shipped family's (:func:`family_calibration`), the ratio is
    that of the family scenario's frames at its own fluence.

    Parameters
    ----------
    s : Scenario
        The scenario.

    Returns
    -------
    float
        The ratio (dimensionless); NaN for another resolution model or without a calibration.
    """
    if s.resolution.model != "simulated":
        return math.nan
    cal = calibration(s)
    return float(cal.compression_ratio) if cal is not None else math.nan
