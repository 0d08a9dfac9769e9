"""``twin scenario``: write, check and document scenario files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from twin.cli.common import guarded
from twin.core.errors import TwinInputError

scenario_app = typer.Typer(no_args_is_help=True, help="Write, check and document scenarios.")


def _scenario_source(name: str) -> Path:
    """A scenario file by path, by name in ./scenarios/, or by name among the scenarios that
    ship with twin (``twin/data/scenarios``: found wherever twin is installed)."""
    from importlib import resources

    p = Path(name)
    if p.exists() or p.suffix == ".toml":
        return p
    local = Path("scenarios") / f"{name}.toml"
    if local.exists():
        return local
    shipped = resources.files("twin.data").joinpath("scenarios")
    if shipped.joinpath(f"{name}.toml").is_file():
        return Path(str(shipped.joinpath(f"{name}.toml")))
    names = sorted(f.name.removesuffix(".toml") for f in shipped.iterdir()
                   if f.name.endswith(".toml")) if shipped.is_dir() else []
    raise TwinInputError("--from", name, "a scenario file, or one of the shipped scenarios: "
                         + ", ".join(names))


@scenario_app.command("new")
@guarded
def scenario_new(name: Annotated[str, typer.Argument(help="scenario name (writes NAME.toml)")],
                 from_: Annotated[Optional[str], typer.Option(
                     "--from", help="start from this scenario (a file, or the name of a "
                     "scenario twin ships, e.g. quickstart)")] = None,
                 output: Annotated[Optional[Path], typer.Option(
                     "-o", "--output", help="file to write (default: NAME.toml)")] = None,
                 force: Annotated[bool, typer.Option(help="overwrite an existing file")]
                 = False) -> None:
    """Write an annotated scenario: every field with its unit, range and default's source."""
    from twin import scenario as sc
    from twin.workflows import scenario_tools as st

    stem = Path(name).name.removesuffix(".toml")    # a path given as NAME: its file's name
    if not stem:
        raise TwinInputError("NAME", name, "a scenario name, e.g. myplan (writes myplan.toml)")
    out = output or Path(name if name.endswith(".toml") else f"{name}.toml")
    if out.exists() and not force:
        raise TwinInputError("--output", str(out), "the file exists; use --force to overwrite")
    base = sc.load(_scenario_source(from_)) if from_ else None
    st.write_new(out, stem, base)
    typer.echo(f"wrote {out}; check it with `twin scenario check {out}`")


@scenario_app.command("check")
@guarded
def scenario_check(file: Annotated[Path, typer.Argument(help="scenario TOML file")]) -> None:
    """Validate a scenario and print the geometry and rates it implies."""
    from twin import scenario as sc
    from twin.workflows import scenario_tools as st

    s = sc.load(file)
    typer.echo(f"{file}: valid scenario '{s.name}'")
    rows = st.check_report(s)
    w = max(len(r[0]) for r in rows)
    for lab, value in rows:
        typer.echo(f"  {lab:<{w}}  {value}")


@scenario_app.command("schema")
@guarded
def scenario_schema(markdown: Annotated[bool, typer.Option(
                        "--markdown", help="Markdown tables (the book's schema page)")] = True,
                    output: Annotated[Optional[Path], typer.Option(
                        "-o", "--output", help="write to this file (default: stdout)")] = None
                    ) -> None:
    """The scenario schema, generated from the models (the book's book/schema.md)."""
    from twin.io.atomic import atomic_path
    from twin.workflows import scenario_tools as st

    text = st.schema_markdown() + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    with atomic_path(output) as tmp:
        tmp.write_text(text)
    typer.echo(f"wrote {output}")
