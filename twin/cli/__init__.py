"""The ``twin`` command line: a thin layer over the library (book/contracts.md §1).

Exit status: 0 success; 2 bad input (one paragraph on stderr naming the field or path, the
value and what is allowed, no traceback); 1 any other failure.

Modules, one per kind of work:

* :mod:`twin.cli.common` - the typer application :data:`app`, ``--version``, and
  :func:`~twin.cli.common.guarded`, which maps errors to the exit statuses;
* :mod:`twin.cli.planning` - ``twin forecast``, ``calibrate``, ``sweep``, ``plan`` and
  ``materials``;
* :mod:`twin.cli.simulation` - ``twin simulate``, ``run`` and ``report``;
* :mod:`twin.cli.reconstruction` - ``twin reconstruct``, ``tomo`` and ``score``;
* :mod:`twin.cli.scenarios` - ``twin scenario new``, ``check`` and ``schema``;
* :mod:`twin.cli.beamline` - ``twin panda`` and ``twin assemble``.

The commands are registered here, in the order ``twin --help`` lists them.
"""

from twin.cli import beamline, planning, reconstruction, scenarios, simulation
from twin.cli.common import app, package_version

for _command in (planning.forecast, planning.calibrate, planning.sweep, simulation.simulate,
                 reconstruction.reconstruct, reconstruction.tomo):
    app.command()(_command)
app.command("run")(simulation.run_)
for _command in (simulation.report, planning.plan, planning.materials, reconstruction.score,
                 beamline.panda, beamline.assemble):
    app.command()(_command)
app.add_typer(scenarios.scenario_app, name="scenario")

__all__ = ["app", "main", "package_version"]


def main() -> None:
    """Console-script entry point (click's standalone mode: usage errors exit 2)."""
    app()
