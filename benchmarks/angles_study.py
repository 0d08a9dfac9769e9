"""The reduced-angle study of seed 002 at laptop scale; writes reports/angles/angles.csv and
angles.png (run by hand: ``python benchmarks/angles_study.py``, ~2 minutes)."""

from pathlib import Path

from twin.tomo import angles

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = angles.study(n=64, rows=6, progress=True)
    out = ROOT / "reports" / "angles"
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "angles.csv", index=False)
    fig, ax = plt.subplots(1, 4, figsize=(18, 4))
    for m, g in df.groupby("method"):
        for a, key in zip(ax, ("pcc", "ms_ssim", "dice", "ber")):
            a.plot(g.n_angles, g[key], marker="o", label=m)
            a.set_xscale("log")
            a.set_xlabel("projection angles over 140.8°")
            a.set_title(key.upper())
            a.grid(alpha=0.3)
    ax[0].legend()
    fig.tight_layout()
    fig.savefig(out / "angles.png", dpi=100)
    print(df.to_string(index=False))
