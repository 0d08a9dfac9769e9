"""The object side of the ptychography operator: probe windows on the object grid.

:class:`ObjectWindows` keeps the positions (the (row, col) top-left corner of each window,
object pixels, fractional allowed) and reads the object under them — at the integer corner, or
interpolated at the fractional position (bilinear, or Keys' cubic convolution with a = −0.5) —
with the exact adjoint, which adds patches back into an object array. It is the base of
:class:`twin.operators.ptychography.FarFieldPtychography`, which sets what it reads: ``xp``,
``probe`` (M, ny, nx), ``object_shape`` (H, W) and ``shift``. The object is (H, W) complex64;
``sel`` picks B of the N windows (an index array or a slice; None: all). On NumPy the reads run
as fused numba kernels (:mod:`twin.core.kernels`) where the probe is not shifted.
"""

from __future__ import annotations

import numpy as np

from twin.core import kernels
from twin.core.scatter import add_windows, window_index

TAPS = {"bilinear": 2, "cubic": 4}


def _keys_weights(f, a: float = -0.5):
    """Keys' cubic-convolution weights of the samples at −1, 0, 1, 2 for a fraction ``f``."""
    def near(d):                       # |d| ≤ 1
        """Weight at distance ``d`` ≤ 1.

        Parameters
        ----------
        d : float or ndarray
            Distance from the sample, pixels.
        """
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):                        # 1 < |d| < 2
        """Weight at distance 1 < ``d`` < 2.

        Parameters
        ----------
        d : float or ndarray
            Distance from the sample, pixels.
        """
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return [far(1 + f), near(f), near(1 - f), far(2 - f)]


def _floats(a) -> np.ndarray:
    """A complex array as complex64 viewed as float32 pairs (…, 2·nx), for the CPU kernels."""
    a = np.asarray(a, np.complex64)
    if a.strides[-1] != a.itemsize:
        a = np.ascontiguousarray(a)
    return a.view(np.float32)


class ObjectWindows:
    """Probe windows on the object grid: positions, patches and their adjoint (see the module
    docstring for the attributes a subclass sets)."""

    # --- positions ----------------------------------------------------------------------------
    def set_positions(self, positions_px, sel=None) -> None:
        """Set all positions, or those ``sel`` of them; checks the windows (with the
        interpolation's taps) lie in the object (ValueError), and clears the caches.

        Parameters
        ----------
        positions_px : array_like
            (N, 2), or (B, 2) for ``sel``: top-left (row, col), object pixels.
        sel : index array, slice or None
            The windows (None: all).
        """
        pos = np.array(positions_px, dtype=float).reshape(-1, 2)
        if sel is not None:
            full = self.positions.copy()
            full[sel] = pos
            pos = full
        ny, nx = self.probe.shape[-2:]
        origin = np.floor(pos).astype(int)
        lo, hi = ((TAPS[self.shift] // 2 - 1, TAPS[self.shift] // 2) if self.shift in TAPS
                  else (0, 0))
        pad = hi
        if len(origin) and (origin.min() < lo or (origin[:, 0] + ny + pad).max()
                            > self.object_shape[0] or (origin[:, 1] + nx + pad).max()
                            > self.object_shape[1]):
            raise ValueError("a probe window falls outside the object array")
        self.positions = pos
        self.origin = origin
        self.frac_np = pos - origin
        self.has_frac = bool(np.any(self.frac_np))
        self._cache = {}
        self._taps_memo = {}
        self._dev_memo = {}

    @property
    def frac(self):
        """(N, 2) float32 sub-pixel parts on the operator's device."""
        return self.xp.asarray(self.frac_np, dtype=self.xp.float32)

    @property
    def n_positions(self) -> int:
        """N: the number of windows."""
        return len(self.origin)

    def _sel(self, sel):
        return slice(None) if sel is None else sel

    def _frac(self, sel):
        """(B, 1, 1) row and column sub-pixel parts of the windows ``sel``, float32."""
        f = self.xp.asarray(self.frac_np[self._sel(sel)], dtype=self.xp.float32)
        return f[:, 0, None, None], f[:, 1, None, None]

    def flat_index(self, sel=None, size: int | None = None):
        """(B, sy, sx) int64 flat (row-major) object indices of the windows ``sel`` at their
        integer corners.

        Parameters
        ----------
        sel : index array, slice or None
            The windows (None: all).
        size : int or None
            Window side (None: the probe's (ny, nx)).
        """
        ny, nx = self.probe.shape[-2:]
        sy, sx = (ny, nx) if size is None else (size, size)
        return window_index(self.origin[self._sel(sel)], (sy, sx), self.object_shape[1],
                            self.xp)

    # --- the object side: patches under the windows -----------------------------------------------
    def _windows(self, obj, sel, size, origins=None):
        o = self.origin[self._sel(sel)] if origins is None else origins
        if self.xp is np:
            win = np.lib.stride_tricks.sliding_window_view(obj, (size, size))
            return win[o[:, 0], o[:, 1]]
        return obj.ravel()[window_index(o, (size, size), self.object_shape[1], self.xp)]

    def _interpolates(self) -> bool:
        return self.shift in TAPS and self.has_frac

    @property
    def fused(self) -> bool:
        """Whether this operator runs on the CPU's fused kernels (:mod:`twin.core.kernels`):
        NumPy arrays, and a probe that no frame shifts (object-side interpolation, or integer
        positions)."""
        return (self.xp is np and kernels.AVAILABLE
                and (self.shift != "fourier" or not self.has_frac))

    def _check_object(self, a) -> None:
        """The fused kernels do not check bounds: an object-sized array must be one."""
        if tuple(a.shape) != self.object_shape:
            raise ValueError(f"an object array of shape {tuple(a.shape)}; the operator's is "
                             f"{self.object_shape}")

    def _taps(self, sel, extra: int = 0):
        """Kernel form of the windows ``sel``: (tap-0 origins (B, 2) int64, wy (B, k), wx (B, k)
        float32); ``extra`` widens each window by that many pixels on every side."""
        key = (id(sel), extra)
        hit = self._taps_memo.get(key)
        if hit is not None and (sel is None if hit[0] is None else
                                sel is not None and np.asarray(sel).dtype == hit[0].dtype
                                and np.array_equal(hit[0], sel)):
            return hit[1]                         # the same windows as a recent call
        o = self.origin[self._sel(sel)]
        if self._interpolates():
            k = TAPS[self.shift]
            f = self.frac_np[self._sel(sel)].astype(np.float32)
            fy, fx = f[:, 0], f[:, 1]
            if self.shift == "bilinear":
                wy, wx = np.stack([1 - fy, fy], 1), np.stack([1 - fx, fx], 1)
            else:
                wy, wx = np.stack(_keys_weights(fy), 1), np.stack(_keys_weights(fx), 1)
            o = o - (k // 2 - 1)
        else:
            wy = wx = np.ones((len(o), 1), np.float32)
        out = (np.ascontiguousarray(o - extra, dtype=np.int64),
               np.ascontiguousarray(wy, np.float32), np.ascontiguousarray(wx, np.float32))
        if len(self._taps_memo) > 8:
            self._taps_memo.clear()
        self._taps_memo[key] = (None if sel is None else np.array(sel, copy=True), out)
        return out

    def _device_taps(self, sel):
        """:meth:`_taps` on the operator's device: tap-0 corners (B, 2) and the row and column
        weights as lists of (B, 1, 1) float32. Moved once per batch (the memo follows
        :meth:`_taps`'s): on a GPU, the copies and a dozen tiny kernels per call otherwise cost
        more than the interpolation they weight."""
        host = self._taps(sel)
        hit = self._dev_memo.get(id(host))
        if hit is not None and hit[0] is host:
            return hit[1]
        org, wy, wx = host
        xp = self.xp
        dy, dx = xp.asarray(wy)[:, :, None, None], xp.asarray(wx)[:, :, None, None]
        dev = (xp.asarray(org), [dy[:, j] for j in range(wy.shape[1])],
               [dx[:, j] for j in range(wx.shape[1])])
        if len(self._dev_memo) > 8:
            self._dev_memo.clear()
        self._dev_memo[id(host)] = (host, dev)      # holds ``host``: its id stays unique
        return dev

    def _weights(self, sel):
        """Row and column interpolation weights, each a list of ``taps`` (B, 1, 1) float32."""
        return self._device_taps(sel)[1:]

    def _read(self, w, wy, wx):
        """Separable interpolation of windows (B, s + k − 1, s + k − 1) → (B, s, s)."""
        k = len(wx)
        m = w.shape[-1] - k + 1
        t = wx[0] * w[:, :, :m]
        for j in range(1, k):
            t += wx[j] * w[:, :, j:j + m]
        out = wy[0] * t[:, :m]
        for j in range(1, k):
            out += wy[j] * t[:, j:j + m]
        return out

    def patches(self, obj, sel=None):
        """(B, ny, nx) object patches under the probe windows ``sel`` (interpolated at the
        fractional positions for ``shift`` "bilinear" or "cubic"). Forward of the pair
        :meth:`patches` / :meth:`patches_adj`.

        Parameters
        ----------
        obj : ndarray
            (H, W) complex64 object.
        sel : index array, slice or None
            The windows (None: all).
        """
        n = self.probe.shape[-1]
        if self.fused:
            self._check_object(obj)
            org, wy, wx = self._taps(sel)
            out = np.empty((len(org), n, n), np.complex64)
            kernels.interp_gather(_floats(obj), org, wy, wx, n, 2, out.view(np.float32))
            return out
        org, wy, wx = self._device_taps(sel)
        if not self._interpolates():
            return self._windows(obj, sel, n, org)
        return self._read(self._windows(obj, sel, n + len(wx) - 1, org), wy, wx)

    def patches_adj(self, p, sel=None, out=None):
        """Adjoint of :meth:`patches`: ``p`` (B, ny, nx) added into an (H, W) object array
        (``out``, or a new zero array). A (1, ny, nx) ``p`` counts for every window.

        Parameters
        ----------
        p : ndarray
            (B, ny, nx) or (1, ny, nx) patches, complex64 or float32.
        sel : index array, slice or None
            The windows (None: all).
        out : ndarray or None
            (H, W) array added into in place and returned (None: zeros of ``p``'s dtype).
        """
        xp = self.xp
        b = len(self.origin[self._sel(sel)])
        if out is None:
            out = xp.zeros(self.object_shape, dtype=p.dtype)
        if self.fused and out.dtype in (np.complex64, np.float32) and out.strides[-1] == \
                out.itemsize:
            self._check_object(out)
            n = self.probe.shape[-1]
            if p.ndim != 3 or p.shape[0] not in (1, b) or p.shape[1:] != (n, n):
                raise ValueError(f"patches of shape {p.shape} for {b} windows of {n}×{n}")
            if np.iscomplexobj(p) and out.dtype == np.float32:
                raise TypeError("complex patches cannot be added into a real object array")
            org, wy, wx = self._taps(sel)
            ch = 2 if out.dtype == np.complex64 else 1
            g = np.asarray(p, out.dtype)
            if g.strides[-1] != g.itemsize:
                g = np.ascontiguousarray(g)
            kernels.interp_scatter(out.view(np.float32), org, wy, wx, g.view(np.float32), ch)
            return out
        if p.shape[0] != b:
            p = xp.broadcast_to(p, (b,) + p.shape[1:])
        origins, wy, wx = self._device_taps(sel)          # tap-0 corners and weights
        if self._interpolates():
            k = len(wy)
            ny, nx = p.shape[1:]
            t = xp.zeros((b, ny + k - 1, nx), dtype=p.dtype)
            for j in range(k):
                t[:, j:j + ny] += wy[j] * p
            w = xp.zeros((b, ny + k - 1, nx + k - 1), dtype=p.dtype)
            for j in range(k):
                w[:, :, j:j + nx] += wx[j] * t
            p = w
        add_windows(out, origins, p)
        return out

    def patch_gradients(self, obj, sel=None):
        """(∂/∂row, ∂/∂col) of the object under the windows ``sel``, each (B, ny, nx): central
        differences of the object as the operator reads it (interpolation included), edges
        repeated where a window touches the object's border.

        Parameters
        ----------
        obj : ndarray
            (H, W) complex64 object.
        sel : index array, slice or None
            The windows (None: all).
        """
        n = self.probe.shape[-1]
        k = TAPS[self.shift] if self._interpolates() else 1
        size = n + 2 + k - 1
        o = self.origin[self._sel(sel)] - 1 - (k // 2 - 1) * (k > 1)
        inside = o.min(initial=0) >= 0 and (o + size <= np.array(self.object_shape)).all()
        if inside and self.fused:
            self._check_object(obj)
            org, wy, wx = self._taps(sel, extra=1)
            w = np.empty((len(org), n + 2, n + 2), np.complex64)
            kernels.interp_gather(_floats(obj), org, wy, wx, n + 2, 2, w.view(np.float32))
            gy = np.empty((len(org), n, n), np.complex64)
            gx = np.empty_like(gy)
            kernels.central_differences(w.view(np.float32), gy.view(np.float32),
                                        gx.view(np.float32))
            return gy, gx
        elif inside:
            w = self._windows(obj, None, size, o)
            if k > 1:
                w = self._read(w, *self._weights(sel))
        else:
            w = self.xp.pad(self.patches(obj, sel), ((0, 0), (1, 1), (1, 1)), mode="edge")
        return (w[:, 2:, 1:-1] - w[:, :-2, 1:-1]) / 2, (w[:, 1:-1, 2:] - w[:, 1:-1, :-2]) / 2
