"""The external programs the report runs: Jupyter Book (static HTML) and headless Chromium (PDF).

Both run as subprocesses, offline; :func:`twin.report.book.build` calls them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def jupyter_book(src: Path, builder: str = "html") -> Path:
    """Build a Jupyter Book source folder with Jupyter Book 1.x (run by this Python).

    Parameters
    ----------
    src : Path
        The book's source folder (``_config.yml``, ``_toc.yml``, pages).
    builder : {"html", "singlehtml"}
        Jupyter Book's builder: one page per chapter, or the whole book on one page.

    Returns
    -------
    Path
        ``src/_build/<builder>/index.html``.

    Raises
    ------
    RuntimeError
        The build failed or made no index page (the message ends with its output).
    """
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build",
           str(src), "--builder", builder]
    r = subprocess.run(cmd, capture_output=True, text=True)
    index = src / "_build" / builder / "index.html"
    if r.returncode != 0 or not index.exists():
        raise RuntimeError(f"jupyter-book build failed:\n{(r.stdout + r.stderr)[-4000:]}")
    return index


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """Path of a headless-capable Chromium, or None: ``$TWIN_CHROMIUM`` if set (None if that
    file does not exist), else the first of :data:`CHROMIUM_NAMES` on the ``PATH``."""
    import os

    env = os.environ.get("TWIN_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def print_pdf(html: Path, pdf: Path, timeout_s: float = 180.0) -> Path:
    """Print an HTML page to ``pdf`` with headless Chromium (offline, atomically).

    Parameters
    ----------
    html : Path
        The page to print (its ``file://`` URI is opened).
    pdf : Path
        The PDF to write; it appears only once complete.
    timeout_s : float
        Longest time Chromium may take, seconds (``subprocess.TimeoutExpired`` beyond).

    Returns
    -------
    Path
        ``pdf``.

    Raises
    ------
    RuntimeError
        Chromium is not installed (the message says how to install it), or printing failed
        (no PDF, or one under 1000 bytes).
    """
    import tempfile

    from twin.io.atomic import atomic_path

    browser = find_chromium()
    if browser is None:
        raise RuntimeError(
            "--pdf needs headless Chromium, which was not found (looked for "
            f"{', '.join(CHROMIUM_NAMES)} and $TWIN_CHROMIUM). Install Debian's package "
            "(`apt-get install chromium`) or point TWIN_CHROMIUM at a Chromium binary"
            + (f"; the HTML report is at {html}" if html.is_file() else
               f"; no HTML report is built yet in {html} (`twin report` without --pdf "
               "builds it)"))
    with tempfile.TemporaryDirectory() as profile, atomic_path(pdf) as tmp:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--disable-quic", f"--user-data-dir={profile}",
               "--no-pdf-header-footer", "--virtual-time-budget=10000",
               f"--print-to-pdf={tmp}", html.resolve().as_uri()]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if not tmp.exists() or tmp.stat().st_size < 1000:
            raise RuntimeError(f"Chromium did not print {html}: {r.stderr[-2000:]}")
    return pdf
