"""The figures of a run: probe, trajectory, frames, reconstruction, FRC/FSC, volume."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from twin.scenario import Scenario
from twin.workflows.rundir import RunDir


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _plt().close(fig)
    return path


def draw_all(s: Scenario, rd: RunDir) -> list[Path]:
    """Draw every figure the stages of run directory ``rd`` have data for.

    Acquisition figures from ``data.cxi`` (its first 512 frames), the reconstruction's from
    ``comparison.npz``, the tomography's from ``chain.npz``; each only where that file exists.

    Parameters
    ----------
    s : Scenario
        The run's scenario (the detector's limits for the frames figure).
    rd : RunDir
        The run directory; figures go to ``rd.figures`` (made if missing).

    Returns
    -------
    list of Path
        The figures drawn, after the sweep figures (``sweep_*.png``) already there.
    """
    figs = rd.figures
    figs.mkdir(exist_ok=True)
    done = [p for p in figs.glob("sweep_*.png")]
    cxi = rd.data_cxi
    if cxi.exists():
        from twin.io.cxi import read_cxi

        d = read_cxi(cxi, frames=512)
        done += [probe(d, figs / "probe.png"), trajectory(d, figs / "trajectory.png"),
                 frames(d, s, figs / "frames.png")]
    comp = rd.comparison_npz
    if comp.exists():
        z = np.load(comp)
        meta = rd.stage_info("reconstruct")
        done += [reconstruction(z, meta, figs / "reconstruction.png"),
                 correlation(z, figs / "frc.png", "FRC: reconstruction vs ground truth")]
    ch = rd.chain_npz
    if ch.exists():
        z = np.load(ch)
        done += [volume(z, figs / "volume.png"),
                 correlation(z, figs / "fsc.png", "FSC: even vs odd angles")]
    return done


def probe(d, path: Path) -> Path:
    """Amplitude and phase (radians) of each probe mode, axes in µm, with each mode's share of
    the power.

    Parameters
    ----------
    d : twin.io.datamodel.PtychoData
        The run's data; its ``illumination`` (M, n, n) complex64 is drawn (zeros if None) on the
        object pixel ``object_pixel_m`` (metres).
    path : Path
        The PNG file to write (100 dpi).

    Returns
    -------
    Path
        ``path``.
    """
    plt = _plt()
    p = d.illumination if d.illumination is not None else np.zeros((1, 8, 8), complex)
    m = p.shape[0]
    fig, ax = plt.subplots(2, m, figsize=(3.2 * m, 6), squeeze=False)
    # the illumination is sampled at the object pixel whatever the binning
    ext = np.array([-1, 1, -1, 1]) * p.shape[-1] / 2 * d.object_pixel_m * 1e6
    power = np.sum(np.abs(p) ** 2, axis=(1, 2))
    for i in range(m):
        a = ax[0, i].imshow(np.abs(p[i]), extent=ext, cmap="magma")
        ax[0, i].set_title(f"mode {i}: amplitude ({100 * power[i] / power.sum():.0f} %)")
        fig.colorbar(a, ax=ax[0, i], fraction=0.046)
        b = ax[1, i].imshow(np.angle(p[i]), extent=ext, cmap="twilight")
        ax[1, i].set_title(f"mode {i}: phase [rad]")
        fig.colorbar(b, ax=ax[1, i], fraction=0.046)
        for a_ in ax[:, i]:
            a_.set_xlabel("x [µm]")
            a_.set_ylabel("y [µm]")
    return _save(fig, path)


def trajectory(d, path: Path) -> Path:
    """The scan's true and captured positions (first 400 frames, µm), the position error per
    frame and its histogram (nm).

    Parameters
    ----------
    d : twin.io.datamodel.PtychoData
        The run's data: ``translations_m`` (N, 3) as captured, metres; ``truth.translations_m``
        the true ones (the captured ones if None) and ``truth.captured`` (N,) bool: which
        positions the PandA captured, the others interpolated (all captured if None).
    path : Path
        The PNG file to write (100 dpi).

    Returns
    -------
    Path
        ``path``.
    """
    plt = _plt()
    true = d.truth.translations_m if d.truth.translations_m is not None else d.translations_m
    cap = d.translations_m
    captured = (d.truth.captured if d.truth.captured is not None
                else np.ones(len(cap), bool))
    err = np.linalg.norm(cap[:, :2] - true[:, :2], axis=1) * 1e9
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    k = min(len(true), 400)
    ax[0].plot(true[:k, 0] * 1e6, true[:k, 1] * 1e6, "-", lw=0.8, label="true")
    ax[0].plot(cap[:k, 0][captured[:k]] * 1e6, cap[:k, 1][captured[:k]] * 1e6, "o", ms=3,
               label="captured (PandA)")
    ax[0].plot(cap[:k, 0][~captured[:k]] * 1e6, cap[:k, 1][~captured[:k]] * 1e6, "x", ms=3,
               label="interpolated")
    ax[0].set_xlabel("x [µm]")
    ax[0].set_ylabel("y [µm]")
    ax[0].set_title(f"trajectory (first {k} frames)")
    ax[0].legend(fontsize=8)
    ax[1].plot(err[:k], lw=0.8)
    ax[1].set_xlabel("frame")
    ax[1].set_ylabel("|captured − true| [nm]")
    ax[1].set_title("position error")
    ax[2].hist(err, bins=40)
    ax[2].set_xlabel("position error [nm]")
    ax[2].set_title(f"rms {np.sqrt(np.mean(err ** 2)):.3g} nm")
    return _save(fig, path)


def frames(d, s: Scenario, path: Path) -> Path:
    """Two frames (the brightest and the median by total counts, log scale) and the highest
    count rate per pixel (counts/s) with the saturated pixels outlined.

    Parameters
    ----------
    d : twin.io.datamodel.PtychoData
        The run's data: ``frames`` (N, ny, nx) counts and ``exposure_s`` (seconds).
    s : Scenario
        The scenario: its detector's count-rate limit and counter depth, and its exposure
        where the data have none.
    path : Path
        The PNG file to write (100 dpi).

    Returns
    -------
    Path
        ``path``.
    """
    plt = _plt()
    from matplotlib.colors import LogNorm

    det = s.detector.resolved()
    f = d.frames
    total = f.sum(axis=(1, 2))
    idx = [int(np.argmax(total)), int(np.argsort(total)[len(total) // 2])]
    exposure = d.exposure_s or s.exposure_s
    rate = f.max(axis=0) / exposure                      # the highest count rate seen per pixel
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.4))
    for a, i in zip(ax[:2], idx):
        im = a.imshow(np.maximum(f[i], 0.5), norm=LogNorm(vmin=0.5, vmax=max(1, f.max())),
                      cmap="viridis")
        a.set_title(f"frame {i}: {total[i]:.3g} counts")
        fig.colorbar(im, ax=a, fraction=0.046, label="counts")
    im = ax[2].imshow(np.maximum(rate, 1), norm=LogNorm(vmin=1, vmax=max(10, rate.max())),
                      cmap="inferno")
    fig.colorbar(im, ax=ax[2], fraction=0.046, label="counts/s")
    limit = det.max_count_rate_per_pixel_hz
    from twin.acquisition.detector import saturation_level

    over = (rate >= limit) | (f.max(axis=0) >= saturation_level(det))
    if over.any():
        ax[2].contour(over, levels=[0.5], colors="cyan")
    ax[2].set_title(f"peak count rate (limit {limit:.2g}/s; cyan: saturated)")
    return _save(fig, path)


def reconstruction(z, meta: dict, path: Path) -> Path:
    """Ground-truth phase, the aligned reconstructed phase and their difference (radians).

    Parameters
    ----------
    z : mapping of str to ndarray
        ``comparison.npz``: ``truth`` and ``aligned`` phase images (ny, nx), radians.
    meta : dict
        The reconstruct stage's summary (its ``pcc_phase`` is in the title).
    path : Path
        The PNG file to write (100 dpi).

    Returns
    -------
    Path
        ``path``.
    """
    plt = _plt()
    a, t = z["aligned"], z["truth"]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.6))
    lim = (float(t.min()), float(t.max()))
    for axis, img, title in ((ax[0], t, "ground truth phase [rad]"),
                             (ax[1], a, f"reconstruction (PCC {meta['pcc_phase']:.3f})"),
                             (ax[2], a - t, "difference [rad]")):
        im = axis.imshow(img, cmap="gray" if axis is not ax[2] else "RdBu",
                         vmin=lim[0] if axis is not ax[2] else None,
                         vmax=lim[1] if axis is not ax[2] else None)
        axis.set_title(title)
        fig.colorbar(im, ax=axis, fraction=0.046)
    return _save(fig, path)


def correlation(z, path: Path, title: str) -> Path:
    """A Fourier ring or shell correlation with its half-bit and 1/7 thresholds.

    Parameters
    ----------
    z : mapping of str to ndarray
        ``freq`` (spatial frequency, 1/m; drawn in 1/µm), ``frc`` or ``fsc``, and ``half_bit``,
        all (n_bins,).
    path : Path
        The PNG file to write (100 dpi).
    title : str
        The figure's title.

    Returns
    -------
    Path
        ``path``.
    """
    plt = _plt()
    f = z["freq"] * 1e-6                                          # 1/µm
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(f, z["frc"] if "frc" in z else z["fsc"], label="correlation")
    ax.plot(f, z["half_bit"], "--", label="half-bit threshold")
    ax.axhline(1 / 7, ls=":", color="gray", label="1/7 threshold")
    ax.set_xlabel("spatial frequency [1/µm]")
    ax.set_ylim(-0.2, 1.05)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def volume(z, path: Path) -> Path:
    """The central slice along each axis of two volumes (δ): from the true projections (top)
    and from the ptycho-tomography chain (bottom).

    Parameters
    ----------
    z : mapping of str to ndarray
        ``chain.npz``: ``truth`` and ``volume``, (rows, cols, cols) each (rows along the
        rotation axis).
    path : Path
        The PNG file to write (100 dpi).

    Returns
    -------
    Path
        ``path``.
    """
    plt = _plt()
    v, t = z["volume"], z["truth"]
    c = np.array(v.shape) // 2
    fig, ax = plt.subplots(2, 3, figsize=(12, 8))
    for row, vol, name in ((0, t, "from true projections"), (1, v, "ptycho-tomography")):
        for col, (img, lab) in enumerate(((vol[c[0]], "xz slice"), (vol[:, c[1]], "yx slice"),
                                          (vol[:, :, c[2]], "yz slice"))):
            im = ax[row, col].imshow(img, cmap="gray")
            ax[row, col].set_title(f"δ, {lab}, {name}", fontsize=9)
            fig.colorbar(im, ax=ax[row, col], fraction=0.046)
    return _save(fig, path)
