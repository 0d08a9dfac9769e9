"""A reconstruction's state: the measured amplitudes, the object (slices), the probe modes of
every beam, the positions, and the operators that tie them together.

The frames are held in memory or streamed from the file batch by batch; with several beams
(multibeam ptychography) each beam has its own probe modes and operator, at the frames'
positions plus the beam's offset. :class:`State` is built from a :class:`PtychoData` and
resolved :class:`~twin.recon.options.Options` (no "auto" left; :mod:`twin.recon.auto`).

The frames' statistics and amplitudes are read by :mod:`twin.recon.frames`, the starting
probe modes made by :mod:`twin.recon.probes`; their names are re-exported here.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from twin.core.errors import TwinInputError
from twin.core.xp import get_xp, to_numpy
from twin.io.datamodel import PtychoData
from twin.operators import ptychography
from twin.operators.propagation import Propagator
from twin.recon.frames import (FrameStatistics, _checked_frames, amplitudes, frame_statistics,
                               statistics, upsampling_of)
from twin.recon.options import Algorithm, Options, PositionCorrection, Result, Start
from twin.recon.probes import ILLUMINATION, fit_modes, initial_probe, orthogonalize_modes

__all__ = [
    "State", "apply_start", "to_result",
    # twin.recon.frames
    "FrameStatistics", "amplitudes", "frame_statistics", "statistics", "upsampling_of",
    # twin.recon.probes
    "ILLUMINATION", "fit_modes", "initial_probe", "orthogonalize_modes",
]


def _check_beams(opts: Options) -> None:
    """Refuse what several beams do not support."""
    if opts.algorithm == Algorithm.MULTISLICE and opts.slices > 1:
        raise TwinInputError("--algorithm", "multislice",
                             "one beam only (the file has several beams)")
    if opts.position_correction == PositionCorrection.ANNEALING:
        raise TwinInputError("--position-correction", "annealing",
                             "none or gradient with several beams")


class State:
    """Frames, object slices (L, H, W), probe modes and positions of a reconstruction, with
    one :class:`~twin.operators.ptychography.FarFieldPtychography` per beam."""

    def __init__(self, data: PtychoData, opts: Options):
        self.xp = get_xp(opts.backend)
        frames, self.streamed = _checked_frames(data)
        self.u = upsampling_of(data, opts.upsampling)
        self.n = frames.shape[-1] * self.u
        self.dx = data.object_pixel_m
        self._detector(data, frames)
        self._geometry(data, opts)
        self._operators(data, opts)
        self.rng = np.random.default_rng(opts.seed)

    def _detector(self, data: PtychoData, frames) -> None:
        """Amplitudes, mask, background and the cost's normalisation, in FFT order."""
        xp, nd = self.xp, frames.shape[-1]
        mask = data.mask if data.mask is not None else np.ones((nd, nd), np.uint8)
        if mask.shape != (nd, nd):
            raise TwinInputError("/entry_1/instrument_1/detector_1/mask", mask.shape,
                                 f"must match the frames ({nd}, {nd})")
        # The operator runs with the plain (unshifted) DFT: the centred DFT differs from it by
        # a circular shift of the output and a phase ramp, neither of which a modulus
        # constraint sees. Frames and mask are moved to that order once here; with upsampling
        # the binned grid is shifted by its own half size, which maps each binned pixel onto
        # the u×u block of the fine grid it covers.
        self.frames = frames if self.streamed else None
        self.amp = None if self.streamed else xp.asarray(amplitudes(frames))
        m = np.fft.ifftshift(mask.astype(np.float32))
        self.mask = xp.asarray(m)
        self.all_valid = bool(np.all(m == 1))
        self.mask_kernel = (np.ones((1, 1), np.float32) if self.all_valid
                            else np.ascontiguousarray(m, np.float32))
        self.norm = statistics(data).masked_total
        # a background b (counts per detector pixel, scalar or (nd, nd)): the model intensity
        # is Σ_m |Ψ_m|² + b
        bg = getattr(data, "background", None)
        self.bg = None
        if bg is not None:
            b = np.broadcast_to(np.asarray(bg, np.float32), (nd, nd))
            self.bg = xp.asarray(np.fft.ifftshift(b).astype(np.float32))

    def _geometry(self, data: PtychoData, opts: Options) -> None:
        """The beams' offsets (row, col pixels), the object's shape and the positions."""
        tr = data.translations_m
        # several beams share every frame (multibeam): beam b lights the object at the
        # frame's position plus its offset
        self.n_beams = getattr(data, "n_beams", 1)
        self.beam_px = np.zeros((1, 2))
        if self.n_beams > 1:
            offs = np.asarray(data.beam_offsets_m, float)
            self.beam_px = np.stack([offs[:, 1], offs[:, 0]], axis=1) / self.dx
            _check_beams(opts)
        if self.n_beams == 1:                 # a square object around the translations
            reach = np.max(np.abs(tr[:, :2])) / self.dx if len(tr) else 0
            side = 2 * int(math.ceil(reach)) + self.n + 8
            self.shape = (side, side)
        else:
            # several beams, side by side (along y): per axis, or the beams' spread along one
            # axis would pad the other too (9 beams' patch: 14× the area)
            t_rc = np.abs(np.asarray(tr)[:, 1::-1]).max(axis=0) / self.dx if len(tr) else 0
            reach = t_rc + np.abs(self.beam_px).max(axis=0)
            self.shape = tuple(int(2 * math.ceil(r) + self.n + 8) for r in reach)
        self.pos = self.clip(ptychography.positions_from_translations(
            tr, self.dx, self.shape, (self.n, self.n)))
        self.pos0 = self.pos.copy()

    def _operators(self, data: PtychoData, opts: Options) -> None:
        """The starting probes and the one forward model (twin.operators.ptychography),
        batched by index arrays, sub-pixel positions as ``opts.subpixel_shift`` says; the
        object slices and (multislice) the propagator between them."""
        xp, u = self.xp, self.u
        if self.n_beams == 1:
            probes = [initial_probe(data, self.n, u, opts.modes, xp)]
        elif data.beam_illumination is None:
            warnings.warn(
                f"the data give {self.n_beams} beam offsets but no per-beam illumination "
                "(/entry_1/instrument_1/source_1/beam_illumination): every beam starts from "
                "the same probe, which the reconstruction separates poorly; give each "
                "beam's model (its coded aperture)", stacklevel=4)
            share = statistics(data).mean_photons / self.n_beams
            one = initial_probe(data, self.n, u, opts.modes, xp, photons=share)
            probes = [one.copy() for _ in range(self.n_beams)]
        else:
            share = statistics(data).mean_photons / self.n_beams
            probes = [initial_probe(data, self.n, u, opts.modes, xp, illumination=ill,
                                    photons=share) for ill in data.beam_illumination]
        # several beams: one operator per beam, at the frames' positions plus the beam's
        # offset, each beam with its own probe modes, sharing the frame's photons
        self.beam_ops = [ptychography.FarFieldPtychography(
            pb, self.pos + d if self.n_beams > 1 else self.pos, self.shape,
            shift=opts.subpixel_shift, centred=False) for pb, d in zip(probes, self.beam_px)]
        self.op = self.beam_ops[0]
        L = opts.slices if opts.algorithm == Algorithm.MULTISLICE else 1
        self.slices = xp.ones((L,) + self.shape, dtype=xp.complex64)
        self.prop = (Propagator((self.n, self.n), self.dx, opts.slice_thickness_m,
                                data.wavelength_m, xp=xp) if L > 1 else None)

    def amplitudes(self, idx):
        """(B, nd, nd) measured amplitudes √I of the frames ``idx``, in the operator's FFT
        order (read from the file when streaming).

        Parameters
        ----------
        idx : array_like of int (B,)
            Frame indices.

        Returns
        -------
        ndarray (B, nd, nd)
            float32 amplitudes on the state's device (nd the frames' side).
        """
        if self.amp is not None:
            return self.amp[idx]
        return self.xp.asarray(amplitudes(self.frames[np.asarray(idx)]))

    def clip(self, pos):
        """``pos`` (N, 2) kept two pixels inside the object on every side, for the
        interpolated reads of the object (by every beam's window).

        Parameters
        ----------
        pos : ndarray (N, 2) float
            Top-left (row, col) window positions, object pixels.

        Returns
        -------
        numpy.ndarray
            (N, 2) clipped positions (a new array).
        """
        lim = np.array(self.shape) - self.n - 3
        if self.n_beams == 1:
            return np.clip(pos, 2, lim)
        return np.clip(pos, 2 - self.beam_px.min(axis=0), lim - self.beam_px.max(axis=0))

    def batches(self, opts: Options):
        """The minibatches of one iteration. In memory: a random permutation cut into
        ``batch_size`` pieces. Streamed: blocks of ``batch_size`` consecutive frames (one
        contiguous read each, aligned to the file's chunks for the default size) in random
        order — consecutive frames of a raster or fly scan also cover a compact region, so
        each batch updates a small part of the object.

        Parameters
        ----------
        opts : Options
            Its ``batch_size``.

        Returns
        -------
        list of numpy.ndarray
            Frame indices of each batch (int), drawn from the state's generator.
        """
        n_pos, b = len(self.pos), opts.batch_size
        if not self.streamed:
            order = self.rng.permutation(n_pos)
            return [order[a:a + b] for a in range(0, n_pos, b)]
        starts = self.rng.permutation(np.arange(0, n_pos, b))
        return [np.arange(a, min(a + b, n_pos)) for a in starts]

    def local(self, idx):
        """(operator, view, sel) for a batch: an operator over the sub-rectangle of the object
        that the batch's windows cover (4-pixel margin), that rectangle as a view of the
        object, and the batch's indices into the local operator. Every per-batch object-sized
        pass (adjoints, preconditioners, updates) then costs the batch's area, not the whole
        object's. Falls back to the whole object when the batch covers most of it.

        Parameters
        ----------
        idx : array_like of int (B,)
            Frame indices of the batch.

        Returns
        -------
        op : FarFieldPtychography
            Beam 0's probe at the batch's positions in the rectangle (or the state's operator).
        view : (slice, slice)
            The rectangle's rows and columns in the object.
        sel : numpy.ndarray or array_like
            Indices of the batch's frames in ``op`` (``arange(B)``, or ``idx`` for the whole
            object).
        """
        H, W = self.shape
        p = self.pos[idx]
        r0, r1, c0, c1 = self._rect(p)
        if (r1 - r0) * (c1 - c0) > 0.5 * H * W:
            return self.op, (slice(None), slice(None)), idx
        op = ptychography.FarFieldPtychography(self.op.probe, p - (r0, c0), (r1 - r0, c1 - c0),
                                               shift=self.op.shift, centred=False)
        return op, (slice(r0, r1), slice(c0, c1)), np.arange(len(idx))

    def _rect(self, p):
        """(r0, r1, c0, c1): the object rows and columns that windows at ``p`` cover, with a
        4-pixel margin, inside the object."""
        r0, c0 = np.maximum(np.floor(p.min(axis=0)).astype(int) - 4, 0)
        r1, c1 = np.minimum(np.floor(p.max(axis=0)).astype(int) + self.n + 5, self.shape)
        return r0, r1, c0, c1

    def beam_groups(self, idx):
        """[(view, [(beam, operator), …], sel)] for a batch. One beam: :meth:`local`'s
        rectangle. Several: where the beams' sub-rectangles are disjoint and small, one group
        per beam on its own rectangle (no two groups write the same object pixel, so the
        groups' updates are the whole-object update: test); else one group of every beam on
        the whole object.

        Parameters
        ----------
        idx : array_like of int (B,)
            Frame indices of the batch.

        Returns
        -------
        list of tuple
            (view as (slice, slice), list of (beam index, operator), indices of the frames in
            those operators).
        """
        if self.n_beams == 1:
            op, view, sel = self.local(idx)
            return [(view, [(0, op)], sel)]
        H, W = self.shape
        rects = [self._rect(self.pos[idx] + d) for d in self.beam_px]
        area = sum((r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in rects)
        disjoint = all(a[1] <= b[0] or b[1] <= a[0] or a[3] <= b[2] or b[3] <= a[2]
                       for i, a in enumerate(rects) for b in rects[i + 1:])
        if not disjoint or area > 0.5 * H * W:
            return [((slice(None), slice(None)), list(enumerate(self.beam_ops)), idx)]
        sel = np.arange(len(idx))
        return [((slice(r0, r1), slice(c0, c1)),
                 [(b, ptychography.FarFieldPtychography(
                     self.beam_ops[b].probe, self.pos[idx] + self.beam_px[b] - (r0, c0),
                     (r1 - r0, c1 - c0), shift=self.op.shift, centred=False))], sel)
                for b, (r0, r1, c0, c1) in enumerate(rects)]

    @property
    def probe(self):
        """Beam 0's probe modes (M, n, n): the only beam's, with one beam."""
        return self.op.probe

    @probe.setter
    def probe(self, value):
        self.op.probe = value

    @property
    def probes(self):
        """Every beam's probe modes (B, M, n, n)."""
        return self.xp.stack([o.probe for o in self.beam_ops])

    @probes.setter
    def probes(self, value):
        for o, v in zip(self.beam_ops, value):
            o.probe = v

    def set_positions(self, pos, idx=None):
        """Set every position (``idx`` None) or those of ``idx``; the operators follow.

        With several beams each beam's operator is set to the positions plus its offset.

        Parameters
        ----------
        pos : ndarray (N, 2) or (len(idx), 2) float
            Top-left (row, col) window positions, object pixels (not clipped here).
        idx : array_like of int, optional
            Which positions ``pos`` replaces.
        """
        if idx is None:
            self.pos = pos
        else:
            self.pos[idx] = pos
        if self.n_beams == 1:
            self.op.set_positions(self.pos)
        else:
            for o, d in zip(self.beam_ops, self.beam_px):
                o.set_positions(self.pos + d)

    @property
    def object(self):
        """The object: the product of the slices (H, W)."""
        o = self.slices[0]
        for s in self.slices[1:]:
            o = o * s
        return o


def apply_start(st: State, start: Start, opts: Options) -> None:
    """Put ``start``'s object (centred), probe (its modes cut or extended to the options')
    and positions into the state.

    The object is centred on the state's object (cropped or padded with 1) into slice 0; the
    probe gets ``opts.modes`` modes (or its own count when ``opts.modes`` < 1); positions are
    converted to pixels and clipped.

    Parameters
    ----------
    st : State
        Modified in place.
    start : Start
        What to start from; None fields keep the state's defaults.
    opts : Options
        The resolved options (``modes``).

    Raises
    ------
    TwinInputError
        ``--probe/--resume`` for a starting probe with several beams; ``--resume:
        /positions_m`` for positions not shaped (N, 2).
    """
    xp = st.xp
    if start.object is not None:
        o = np.ones(st.shape, np.complex64)
        src = np.asarray(start.object, np.complex64)
        rows = [(max(0, a // 2 - b // 2), max(0, b // 2 - a // 2), min(a, b))
                for a, b in zip(st.shape, src.shape)]    # (dst0, src0, length) per axis
        (d0, s0, h), (d1, s1, w) = rows
        o[d0:d0 + h, d1:d1 + w] = src[s0:s0 + h, s1:s1 + w]
        st.slices[0] = xp.asarray(o)
    if start.probe is not None:
        if st.n_beams > 1:
            raise TwinInputError("--probe/--resume", f"{st.n_beams} beams",
                                 "one beam (a starting probe per beam is not read yet)")
        m = opts.modes if opts.modes >= 1 else len(start.probe)
        st.probe = xp.asarray(fit_modes(start.probe, m, xp))
    if start.positions_m is not None:
        pos = np.asarray(start.positions_m, float)
        if pos.shape != (len(st.pos), 2):
            raise TwinInputError("--resume: /positions_m", pos.shape,
                                 f"one x, y row per frame ({len(st.pos)}, 2)")
        st.set_positions(st.clip(ptychography.positions_from_translations(
            pos, st.dx, st.shape, (st.n, st.n))))


def to_result(st: State, costs, elapsed: float, stopped, chosen, first: int = 0) -> Result:
    """The state as a :class:`Result` (``first``: iterations before this run's).

    Parameters
    ----------
    st : State
        The reconstruction's state.
    costs : sequence of float
        Cost per iteration, earlier runs' included.
    elapsed : float
        Seconds this run took.
    stopped : str or None
        Why the run stopped early, if it did.
    chosen : list of str
        What the automatic choices chose, and why.
    first : int
        Number of iterations in ``costs`` from before this run (for the rate).

    Returns
    -------
    Result
        Object complex64 (H, W) (the product of the slices), beam 0's probe, positions in pixels
        and metres (x, y), the slices when there are several, the per-beam probes with several
        beams, and timings ``seconds`` and ``frame_iterations_per_s``.
    """
    tr = ptychography.translations_from_positions(st.pos, st.dx, st.shape, (st.n, st.n))
    slices = to_numpy(st.slices) if st.slices.shape[0] > 1 else None
    return Result(to_numpy(st.object).astype(np.complex64), to_numpy(st.probe),
                  st.pos.copy(), tr[:, :2], list(costs), st.dx, slices, stopped,
                  {"seconds": elapsed, "frame_iterations_per_s":
                   len(st.pos) * max(len(costs) - first, 1) / max(elapsed, 1e-9)}, chosen,
                  to_numpy(st.probes) if st.n_beams > 1 else None)
