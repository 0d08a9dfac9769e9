"""Collect the seed scenarios' `twin run` summaries (reports/*/summary.json) into
reports/README.md, which the book includes. Run by hand after the runs."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fmt(v, scale=1.0, unit="", digits=3):
    if v is None:
        return "—"
    return f"{v * scale:.{digits}g}{unit}"


def main() -> None:
    rows = ["| scenario | frames simulated | PCC (phase) | FRC half-bit | 3D preview PCC | "
            "FSC half-bit | forecast resolution |", "|---|---|---|---|---|---|---|"]
    for p in sorted((ROOT / "reports").glob("*/summary.json")):
        s = json.loads(p.read_text())
        rec = s.get("reconstruct", {})
        tom = s.get("tomography", {})
        rows.append(
            f"| {s['scenario']} | {s.get('simulate', {}).get('frames', '—')} | "
            f"{fmt(rec.get('pcc_phase'))} | {fmt(rec.get('frc_resolution_m'), 1e9, ' nm')} | "
            f"{fmt(tom.get('pcc_volume'))} | {fmt(tom.get('fsc_resolution_m'), 1e9, ' nm')} | "
            f"{fmt(s['forecast'].get('resolution_forecast_m'), 1e9, ' nm')} |")
    text = ("# Reports of the seed scenarios\n\n"
            "`twin run scenarios/NAME.toml -o reports/NAME` at the sizes of each scenario's "
            "`[run]` table (a laptop's: the first frames of the first projection, and a "
            "preview of the 3D chain on a few-µm field); each folder holds the summary, the "
            "forecast and the figures (the data and the built HTML are not kept).\n\n"
            + "\n".join(rows) + "\n")
    (ROOT / "reports" / "README.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
