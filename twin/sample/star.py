"""The Siemens star: a thin resolution target of heavy-metal spokes on a membrane.

Real stars are not ideal: their spokes, written by electron-beam lithography and
electroplated or etched, have sidewalls a few degrees off vertical and edges that wander by a
few nanometres. Both are modelled in the projected spoke thickness:

* **Sidewall.** A spoke of thickness t whose walls lean at ``sidewall_angle_deg`` α to the
  membrane has a projected thickness that ramps linearly from 0 to t over w = t·cot α across
  every edge (spoke edges and the outer rim), the ramp centred on the nominal edge so that the
  spokes keep their nominal duty cycle.
* **Line-edge roughness.** Each spoke edge is displaced along its normal by δ(ρ), ρ the
  distance along the edge from the star's centre: a Gaussian random process of rms
  ``edge_roughness_m`` σ and correlation C(Δρ) = σ² exp(−Δρ²/ξ²), ξ = ``edge_correlation_m``,
  drawn from the scenario's seed on a grid fixed by the star alone, so that any window of the
  star sees the same edges. The outer rim is kept smooth.

Near the centre, where a sector is narrower than the ramp, each point takes the ramp of its
nearest edge: there the spokes blur to half thickness, as a real star's centre does.
"""

from __future__ import annotations

import math

import numpy as np

_ROUGH_STREAM = 0x57A4     # the random stream of the edges: (this, seed, spokes)


def edge_displacements(spokes: int, radius_m: float, rms_m: float, correlation_m: float,
                       seed: int) -> tuple[np.ndarray, float]:
    """(2·spokes, n) edge displacements δ_k on a grid of step h along each edge, and h.

    Edge k lies at the angle kπ/spokes; δ > 0 widens the spoke. White noise on the grid is
    convolved with a Gaussian of standard deviation ξ/2 (normalised to unit power), which
    gives the correlation σ² exp(−Δρ²/ξ²).

    Parameters
    ----------
    spokes : int
        Number of spokes (the star has 2·spokes edges).
    radius_m : float
        Star radius, metres: the grid covers 0 … radius plus two steps.
    rms_m : float
        rms displacement σ, metres.
    correlation_m : float
        Correlation length ξ, metres (> 0); the grid step is h = ξ/8.
    seed : int
        Seed of the edges' random stream (with the spoke count).

    Returns
    -------
    displacements : numpy.ndarray
        (2·spokes, ⌈radius/h⌉ + 2) float64 displacements, metres.
    h : float
        Grid step along each edge, metres.
    """
    h = correlation_m / 8
    n = int(math.ceil(radius_m / h)) + 2
    half = int(math.ceil(2.5 * correlation_m / h))
    x = np.arange(-half, half + 1) * h
    g = np.exp(-2 * x ** 2 / correlation_m ** 2)
    g /= np.sqrt(np.sum(g ** 2))
    rng = np.random.default_rng([_ROUGH_STREAM, int(seed) % 2 ** 63, int(spokes)])
    noise = rng.standard_normal((2 * spokes, n + 2 * half))
    out = np.stack([np.convolve(e, g, mode="valid") for e in noise])
    return out * rms_m, h


def _ramp(d, w: float):
    """Fraction of full thickness at signed distance d from an edge (d > 0 inside)."""
    if w <= 0:
        return (d > 0).astype(float)
    return np.clip(0.5 + d / w, 0.0, 1.0)


def siemens_star_thickness(shape, pixel_size_m: float, spokes: int, radius_m: float,
                           thickness_m: float, supersample: int = 4,
                           centre_px: tuple[float, float] | None = None,
                           sidewall_angle_deg: float = 90.0, edge_roughness_m: float = 0.0,
                           edge_correlation_m: float = 30e-9, seed: int = 0) -> np.ndarray:
    """(ny, nx) projected spoke thickness in metres (area-weighted over each pixel).

    Parameters
    ----------
    shape : (int, int)
    pixel_size_m : float
    spokes : int
        Number of spokes (each a dark and a light sector).
    radius_m, thickness_m : float
        The star's outer radius and its spokes' thickness.
    supersample : int
        Sub-pixels per pixel side for the area weighting.
    centre_px : (float, float) or None
        (row, col) of the star's centre; default the centre pixel (ny//2, nx//2).
    sidewall_angle_deg : float
        Sidewall angle to the membrane; 90 (default) is vertical.
    edge_roughness_m, edge_correlation_m : float
        Rms and correlation length of the line-edge roughness (default 0: ideal edges).
    seed : int
        Seed of the edges' roughness.
    """
    ny, nx = shape
    cy, cx = (ny // 2, nx // 2) if centre_px is None else centre_px
    s = supersample
    off = (np.arange(s) + 0.5) / s - 0.5
    acc = np.zeros(shape)
    yy0, xx0 = np.mgrid[:ny, :nx]
    ideal = sidewall_angle_deg >= 90.0 and edge_roughness_m <= 0
    w = 0.0 if sidewall_angle_deg >= 90.0 else thickness_m / math.tan(
        math.radians(sidewall_angle_deg))
    if edge_roughness_m > 0:
        table, h = edge_displacements(spokes, radius_m + w + 4 * edge_roughness_m,
                                      edge_roughness_m, edge_correlation_m, seed)
    for dy in off:
        for dx in off:
            y = (yy0 - cy + dy) * pixel_size_m
            x = (xx0 - cx + dx) * pixel_size_m
            th = np.arctan2(y, x)
            if ideal:
                acc += (np.sin(spokes * th) > 0) & (x * x + y * y <= radius_m ** 2)
                continue
            r = np.hypot(x, y)
            u = spokes * np.mod(th, 2 * np.pi)                        # edges at u = kπ
            k = np.rint(u / np.pi).astype(np.int64)                   # nearest edge
            phi = np.abs(u - k * np.pi) / spokes                      # angle to it
            d = r * np.sin(phi) * np.where(u - k * np.pi < 0, -1.0, 1.0)
            d = np.where(np.mod(k, 2) == 0, d, -d)                    # > 0 inside a spoke
            if edge_roughness_m > 0:
                rho = r * np.cos(phi) / h
                i0 = np.clip(rho.astype(np.int64), 0, table.shape[1] - 2)
                f = np.clip(rho - i0, 0.0, 1.0)
                row = np.mod(k, 2 * spokes)
                d = d + table[row, i0] * (1 - f) + table[row, i0 + 1] * f
            acc += _ramp(d, w) * _ramp(radius_m - r, w)
    return acc / s ** 2 * thickness_m
