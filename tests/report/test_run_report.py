"""`twin run` and `twin report` as a person would see them: the quickstart's report built,
its pages opened in headless Chromium, every figure present, nothing fetched from the net."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from twin import scenario

from twin import report as run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    s = scenario.load(ROOT / "scenarios" / "quickstart.toml")
    s = s.with_values({"run.frames": 200, "run.iterations": 12}, keep_sweep=True)
    out = tmp_path_factory.mktemp("run") / "quick"
    summary = run.run(s, out, progress=False, log=lambda m: None)
    return s, out, summary


def test_run_stages_and_cache(quick_run):
    s, out, summary = quick_run
    assert summary["stages"] == {"sweep": "run", "simulate": "run", "reconstruct": "run"}
    assert summary["reconstruct"]["pcc_phase"] > 0.5
    assert (out / "forecast.json").exists() and (out / "simulate" / "data.cxi").exists()
    again = run.run(s, out, progress=False, build_report=False, log=lambda m: None)
    assert set(again["stages"].values()) == {"cached"}
    # a change to the reconstruction redoes the reconstruction only
    more = run.run(s.with_values({"run.iterations": 13}, keep_sweep=True), out, progress=False,
                   build_report=False, log=lambda m: None)
    assert more["stages"] == {"sweep": "cached", "simulate": "cached", "reconstruct": "run"}


def test_report_pages_have_their_figures(quick_run):
    _, out, summary = quick_run
    html = out / "report" / "_build" / "html"
    pages = {p.stem: p.read_text() for p in html.glob("*.html")}
    for name in ("index", "forecast", "acquisition", "reconstruction"):
        assert name in pages
    for name, figs in (("acquisition", ("probe", "trajectory", "frames")),
                       ("reconstruction", ("reconstruction", "frc")),
                       ("forecast", ("sweep_total_time",))):
        for f in figs:
            m = re.search(rf'src="(_images/{f}[^"]*\.png)"', pages[name])
            assert m, f"{f} missing from {name}"
            assert (html / m.group(1)).stat().st_size > 5000
    assert "total_time_s" in pages["forecast"] and "dose_gy" in pages["forecast"]


def test_report_loads_nothing_from_the_internet_statically(quick_run):
    _, out, _ = quick_run
    html = out / "report" / "_build" / "html"
    for p in html.glob("*.html"):
        text = p.read_text()
        loaded = re.findall(r'<(?:script|img|link)[^>]+(?:src|href)="(https?://[^"]+)"', text)
        assert not loaded, f"{p.name} loads {loaded}"


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_chromium() is None and not os.environ.get("TWIN_REQUIRE_CHROMIUM"),
                    reason="headless Chromium is not installed (CI installs it)")
def test_pages_render_in_headless_chromium(quick_run, tmp_path):
    _, out, _ = quick_run
    browser = _chromium()
    assert browser, "TWIN_REQUIRE_CHROMIUM is set but no Chromium was found"
    html = out / "report" / "_build" / "html"
    import numpy as np
    from PIL import Image

    for page in ("index", "acquisition", "reconstruction"):
        shot = tmp_path / f"{page}.png"
        netlog = tmp_path / f"{page}.json"
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--disable-quic", f"--user-data-dir={tmp_path / 'profile'}",
               f"--log-net-log={netlog}", "--window-size=1280,2400",
               "--virtual-time-budget=4000", f"--screenshot={shot}",
               (html / f"{page}.html").as_uri()]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert shot.exists(), r.stderr[-2000:]
        img = np.asarray(Image.open(shot).convert("L"), dtype=float)
        assert img.std() > 10                     # not a blank page
        urls = set(re.findall(r'"(https?://[^"\\ ]+)', netlog.read_text()))
        # the browser's own service calls (time, updates, accounts) are not the page's
        own = ("google.com", "googleapis.com", "gvt1.com", "gstatic.com", "chromium.org")
        page_urls = {u for u in urls
                     if not any(re.match(rf"https?://([^/]*\.)?{re.escape(h)}", u) for h in own)}
        assert not page_urls, f"{page} requested {sorted(page_urls)[:5]}"
