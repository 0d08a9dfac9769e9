"""The reconstruction's options: one typed model, the one place where each option is defined.

Every choice is a :class:`enum.StrEnum` (as pty-chi's ``api/enums.py``), every number has its
bounds, and every field its description. The scenario's ``[reconstruction]`` table
(:class:`twin.scenario.Reconstruction`) takes its fields, types, bounds and descriptions from
:class:`Options`, and ``twin reconstruct``'s flags take their defaults and help from it
(:func:`help_for`); a bad value fails when the options are made, naming the flag
(``--batch-size``), the value and what is allowed (:class:`twin.core.errors.TwinInputError`).

:class:`Options` is a (pydantic) dataclass: ``dataclasses.replace`` re-validates, and
``dataclasses.asdict`` gives the plain values (the simulated-resolution cache hashes them).
"""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, field

import numpy as np
import pydantic
from pydantic import ConfigDict, Field, ValidationError

from twin.core.errors import TwinInputError


class Algorithm(enum.StrEnum):
    """The engines (:mod:`twin.recon.engines`); ``auto``: chosen by :mod:`twin.recon.auto`."""

    AUTO = "auto"
    EPIE = "epie"
    RPIE = "rpie"
    LSQML = "lsqml"
    MULTISLICE = "multislice"


class PositionCorrection(enum.StrEnum):
    """How scan positions are refined (:mod:`twin.recon.positions`)."""

    AUTO = "auto"
    NONE = "none"
    GRADIENT = "gradient"
    ANNEALING = "annealing"


class NoiseModel(enum.StrEnum):
    """LSQML's likelihood."""

    GAUSSIAN = "gaussian"
    POISSON = "poisson"


class LsqmlSteps(enum.StrEnum):
    """LSQML's step lengths: the median of the per-position least-squares steps, or each
    position's own."""

    MEDIAN = "median"
    PER_POSITION = "per_position"


class SubpixelShift(enum.StrEnum):
    """How sub-pixel positions are applied (:data:`twin.operators.ptychography.SHIFTS`)."""

    FOURIER = "fourier"
    CUBIC = "cubic"
    BILINEAR = "bilinear"


class Backend(enum.StrEnum):
    """The array module: ``auto`` is CuPy where a GPU is usable, else NumPy."""

    AUTO = "auto"
    NUMPY = "numpy"
    CUPY = "cupy"


ALGORITHMS = tuple(a.value for a in Algorithm if a is not Algorithm.AUTO)

# how the engines apply sub-pixel positions (twin.operators.ptychography.SHIFTS). The exact
# Fourier shift of the probe costs two FFTs per frame more (four instead of the two a frame
# needs); a cubic (Keys) read of the object at the fractional position costs a fused pass of
# the CPU kernels (twin.core.kernels). Measured on 529 frames of 64², 20 iterations, 2 cores,
# one run: rPIE fourier 1.77 s PCC 0.9505, cubic 1.08 s PCC 0.9485, bilinear 1.01 s PCC 0.9469;
# LSQML 2.34 s 0.9556 / 1.35 s 0.9520 / 1.33 s 0.9484. Cubic keeps the PCC within 0.004 of the
# exact shift at 1.6–1.7× the speed, and saves the same two FFTs per frame on a GPU.
SUBPIXEL_SHIFT = SubpixelShift.CUBIC


def _f(default, description: str, **bounds):
    return Field(default, description=description, **bounds)


@pydantic.dataclasses.dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class _Fields:
    algorithm: Algorithm = _f(Algorithm.RPIE, "Reconstruction engine (auto: chosen from the "
                              "data).")
    iterations: int = _f(50, "Iterations (epochs).", ge=1, le=100_000)
    modes: int = _f(1, "Probe modes reconstructed (0: chosen from a test reconstruction).",
                    ge=0, le=64)
    batch_size: int = _f(64, "Scan positions per batch.", ge=1)
    alpha: float = _f(0.05, "rPIE regularisation (1: ePIE's max-normalised step).", ge=0, le=1)
    object_step: float = _f(1.0, "Object step length.", gt=0)
    probe_step: float = _f(1.0, "Probe step length.", gt=0)
    probe_update_start: int = _f(1, "First iteration (0-based) that updates the probe.", ge=0)
    upsampling: int | None = _f(None, "Reciprocal-space upsampling for binned frames "
                                "(default: from the file).", ge=1)
    position_correction: PositionCorrection = _f(
        PositionCorrection.NONE, "Position refinement (auto: on when a test reconstruction "
        "finds the positions uncertain).")
    position_correction_start: int = _f(5, "First iteration that refines positions.", ge=0)
    max_position_step_px: float = _f(0.5, "Largest position step per batch, pixels.", gt=0)
    position_relaxation: float = _f(0.5, "Fraction of each estimated shift applied.", ge=0)
    position_smoothing_frames: int = _f(0, "Fly scans: moving average of the corrections "
                                        "over this many consecutive frames (0: none).", ge=0)
    noise_model: NoiseModel = _f(NoiseModel.GAUSSIAN, "LSQML's likelihood.")
    lsqml_steps: LsqmlSteps = _f(LsqmlSteps.MEDIAN, "LSQML: the median of the least-squares "
                                 "steps, or each position's own.")
    lsqml_regularization: float = _f(1e-2, "LSQML: preconditioner floor, × the largest |P|².",
                                     ge=0)
    slices: int = _f(1, "Multislice: number of slices through the sample depth.",
                     ge=1, le=1000)
    slice_thickness_m: float = _f(0.0, "Multislice: slice spacing, metres.", ge=0)
    seed: int = _f(0, "Random seed (batch order, annealing trials).")
    backend: Backend = _f(Backend.AUTO, "Array module (auto: CuPy where a GPU is usable).")
    divergence_factor: float = _f(10.0, "Stop when the cost exceeds this × the best.", gt=0)
    subpixel_shift: SubpixelShift = _f(SUBPIXEL_SHIFT, "Sub-pixel positions: fourier (exact) "
                                       "or cubic/bilinear reads of the object.")


def _as_input_error(exc: ValidationError) -> TwinInputError:
    """The first error of ``exc`` as a :class:`TwinInputError` naming the flag."""
    err = exc.errors()[0]
    name = str(err["loc"][0]) if err["loc"] else "options"
    flag = f"--{name.replace('_', '-')}"
    if err["type"] == "unexpected_keyword_argument":
        return TwinInputError(flag, err["input"], "not a reconstruction option")
    if err["type"] == "enum":
        return TwinInputError(flag, err["input"], f"allowed: {err['ctx']['expected']}")
    return TwinInputError(flag, err["input"], err["msg"].lower())


class Options(_Fields):
    """The engines' settings; every field typed, bounded and described in ``_Fields``.

    Made from keywords (``Options(algorithm="lsqml", modes=2)``); a bad value raises
    :class:`TwinInputError` naming the flag. Fields left to the automatic choices:
    ``algorithm="auto"``, ``modes=0``, ``position_correction="auto"`` (:attr:`automatic`).
    """

    def __init__(self, **kw):
        try:
            super().__init__(**kw)
        except ValidationError as exc:
            raise _as_input_error(exc) from None

    @property
    def automatic(self) -> bool:
        """Whether any choice is left to :func:`twin.recon.auto.auto_options`."""
        return (self.algorithm == Algorithm.AUTO or self.modes == 0
                or self.position_correction == PositionCorrection.AUTO)


#: Options with every choice left to :func:`twin.recon.auto.auto_options` (what
#: ``twin reconstruct`` and ``twin run`` use unless told otherwise).
AUTO = dict(algorithm=Algorithm.AUTO, modes=0, position_correction=PositionCorrection.AUTO)


def option_fields() -> dict:
    """``{name: pydantic FieldInfo}`` of :class:`Options`: type, default, bounds, description.

    Returns
    -------
    dict
        A new dict (the FieldInfo objects are pydantic's own, not copies).
    """
    return dict(Options.__pydantic_fields__)


def field_info(name: str):
    """A copy of option ``name``'s pydantic ``FieldInfo`` (default, bounds, description), for
    another model that takes the option as it is (the scenario's ``[reconstruction]``).

    Parameters
    ----------
    name : str
        A field of :class:`Options`.

    Returns
    -------
    pydantic.fields.FieldInfo
        A shallow copy.

    Raises
    ------
    KeyError
        For a name that is not an option.
    """
    return copy.copy(Options.__pydantic_fields__[name])


def help_for(name: str) -> str:
    """A command-line help text for option ``name``: its description, and its choices.

    Parameters
    ----------
    name : str
        A field of :class:`Options`.

    Returns
    -------
    str
        The description, followed by " One of: …." for an enum-typed option.

    Raises
    ------
    KeyError
        For a name that is not an option.
    """
    info = Options.__pydantic_fields__[name]
    text = info.description or ""
    kind = info.annotation
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        text += f" One of: {', '.join(m.value for m in kind)}."
    return text


@dataclass
class Result:
    """What a reconstruction returns."""

    object: np.ndarray             # (H, W) complex64 (multislice: the product of the slices)
    probe: np.ndarray              # (M, n, n) complex64
    positions_px: np.ndarray       # (N, 2) refined top-left (row, col)
    positions_m: np.ndarray        # (N, 2) refined x, y in metres (CONTRACTS §4)
    cost: list[float]
    pixel_size_m: float
    slices: np.ndarray | None = None
    stopped_early: str | None = None
    timings: dict = field(default_factory=dict)
    chosen: list[str] = field(default_factory=list)   # what auto_options chose and why
    beam_probes: np.ndarray | None = None  # several beams: (B, M, n, n); ``probe`` is beam 0's


@dataclass
class Start:
    """Where a reconstruction starts instead of the defaults (``--probe``, ``--object``,
    ``--resume``): each field None keeps the default. Arrays are at the reconstruction's
    object pixel (twin.recon.controls checks and resamples a file's)."""
    object: np.ndarray | None = None        # (H, W) complex, centred on the scan's centre
    probe: np.ndarray | None = None         # (M, n, n) complex; modes cut or added to M
    positions_m: np.ndarray | None = None   # (N, 2) x, y as Result.positions_m
    cost: list[float] = field(default_factory=list)  # earlier iterations' costs (resume)


__all__ = ["Algorithm", "PositionCorrection", "NoiseModel", "LsqmlSteps", "SubpixelShift",
           "Backend", "ALGORITHMS", "SUBPIXEL_SHIFT", "Options", "AUTO", "Result", "Start",
           "option_fields", "field_info", "help_for"]
