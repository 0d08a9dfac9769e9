"""The report layer: figures and the Jupyter Book of a run, and ``twin run`` as a whole.

:data:`STAGES` is the acquisition chain of :mod:`twin.workflows.pipeline` followed by the two
stages of this layer (figures, report) over the same :class:`~twin.workflows.rundir.RunDir`.

- :mod:`twin.report.figures`: the figures of a run (PNG);
- :mod:`twin.report.book`: the Jupyter Book's pages, written from the templates, and its build;
- :mod:`twin.report.tools`: the external programs it runs (Jupyter Book, headless Chromium).
"""

from __future__ import annotations

from pathlib import Path

from twin.scenario import Scenario
from twin.workflows import pipeline
from twin.workflows.rundir import RunDir


def _figures(s: Scenario, rd: RunDir, log, progress: bool) -> dict:
    from twin.report import figures

    return {"files": [str(p.relative_to(rd.root)) for p in figures.draw_all(s, rd)]}


def _report(s: Scenario, rd: RunDir, log, progress: bool) -> dict:
    from twin.report import book

    return {"index": str(book.build(rd.root))}


FIGURES = pipeline.Stage("figures", lambda s: None, _figures, cached=False)
REPORT = pipeline.Stage("report", lambda s: None, _report, cached=False)
STAGES = (*pipeline.STAGES, FIGURES, REPORT)


def run(s: Scenario, out: str | Path, progress: bool = True, build_report: bool = True,
        log=print) -> dict:
    """``twin run``: every stage for scenario ``s`` into ``out``, ending in the built report.

    Parameters
    ----------
    s : Scenario
        The scenario.
    out : str or Path
        The run directory (:class:`~twin.workflows.rundir.RunDir`); stages whose inputs are
        unchanged come from its cache.
    progress : bool
        Show progress bars.
    build_report : bool
        False: stop after the figures (no Jupyter Book build).
    log : callable (str) -> None
        Where the stages' messages go.

    Returns
    -------
    dict
        The summary (as ``summary.json``: the forecast, each stage's results and whether it ran
        or came from the cache), except that ``"report"`` is the HTML index page's path, where
        the file holds ``{"index": path}``.
    """
    stages = STAGES if build_report else (*pipeline.STAGES, FIGURES)
    summary = pipeline.run(s, out, progress=progress, log=log, stages=stages)
    if "report" in summary:
        summary["report"] = summary["report"]["index"]
    return summary
