"""One options vocabulary: the engines' model, the scenario's [reconstruction] table made from
it, and no option that nothing reads."""

import dataclasses
import enum
import re
from pathlib import Path

import pytest

from twin import scenario
from twin.core.errors import TwinInputError
from twin.geometry import reconstruction_options
from twin.recon import options

ROOT = Path(__file__).resolve().parents[2]
QUICK = ROOT / "scenarios" / "quickstart.toml"


def _source_outside(*skip: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((ROOT / "twin").rglob("*.py"))
                     if p not in skip)


def test_every_engine_option_is_read_by_some_code():
    # an option that no code reads is a setting that silently does nothing
    code = _source_outside(ROOT / "twin" / "recon" / "options.py")
    unread = [name for name in options.option_fields()
              if not re.search(rf"\.{name}\b", code)]
    assert not unread, f"options no code reads: {unread}"


def _other_value(name: str, info, current):
    """A valid value of scenario field ``name`` other than ``current``."""
    kind = info.annotation
    if kind is bool or kind == "bool":
        return not current
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        # a choice that the options keep as written (no automatic choice, no one-slice rule)
        return next(m for m in kind if m != current and m.value not in ("auto", "multislice"))
    return current + 1


@pytest.mark.parametrize("name", list(scenario.Reconstruction.model_fields))
def test_every_scenario_reconstruction_field_reaches_the_engines(name):
    # changing any [reconstruction] field changes the options the run reconstructs with (the
    # choices "auto" leaves to the data, with auto off): none is set but never read
    s = scenario.load(QUICK)
    base = s.reconstruction.model_copy(update={"auto": False} if name != "auto" else {})
    info = scenario.Reconstruction.model_fields[name]
    changed = scenario.Reconstruction(**{**base.model_dump(),
                                         name: _other_value(name, info, getattr(base, name))})
    a = reconstruction_options(s.model_copy(update={"reconstruction": base}))
    b = reconstruction_options(s.model_copy(update={"reconstruction": changed}))
    assert dataclasses.asdict(a) != dataclasses.asdict(b)


def test_scenario_fields_are_the_engine_options():
    # the scenario's table takes each option's bounds and description from the engines' model
    for name, info in scenario.Reconstruction.model_fields.items():
        if name == "auto":
            continue
        engine = options.option_fields()[name]
        assert (info.default, info.description, info.metadata) == \
            (engine.default, engine.description, engine.metadata)


@pytest.mark.parametrize("written,meant", [("true", "gradient"), ("false", "none"),
                                           ('"annealing"', "annealing"), ('"none"', "none")])
def test_position_correction_in_a_scenario(written, meant):
    text = QUICK.read_text().replace('algorithm = "epie"',
                                     f'algorithm = "epie"\nposition_correction = {written}')
    s = scenario.loads(text, source="q.toml")
    assert s.reconstruction.position_correction == meant
    opts = reconstruction_options(s.model_copy(update={"reconstruction": s.reconstruction
                                                       .model_copy(update={"auto": False})}))
    assert opts.position_correction == meant


def test_bad_scenario_values_are_named():
    text = QUICK.read_text().replace('algorithm = "epie"', 'algorithm = "epie"\nupsampling = 2')
    with pytest.raises(TwinInputError, match="upsampling"):       # the key is gone
        scenario.loads(text, source="q.toml")
    text = QUICK.read_text().replace('algorithm = "epie"', 'position_correction = "magic"')
    with pytest.raises(TwinInputError, match="reconstruction.position_correction"):
        scenario.loads(text, source="q.toml")


@pytest.mark.parametrize("kw,flag,allowed", [
    (dict(algorithm="magic"), "--algorithm", "lsqml"),
    (dict(position_correction=True), "--position-correction", "gradient"),
    (dict(batch_size=0), "--batch-size", "greater than or equal to 1"),
    (dict(modes=65), "--modes", "less than or equal to 64"),
    (dict(noise_model="laplace"), "--noise-model", "poisson"),
    (dict(bogus=1), "--bogus", "not a reconstruction option"),
])
def test_bad_options_name_the_flag_and_what_is_allowed(kw, flag, allowed):
    with pytest.raises(TwinInputError) as info:
        options.Options(**kw)
    assert info.value.field == flag and allowed in info.value.allowed
    good = options.Options(algorithm="lsqml")
    with pytest.raises(TwinInputError, match=flag):           # replace validates too
        dataclasses.replace(good, **kw)


def test_command_line_help_lists_the_choices():
    assert "auto, none, gradient, annealing" in options.help_for("position_correction")
    assert options.help_for("iterations") == options.option_fields()["iterations"].description


@pytest.mark.parametrize("flag,value,allowed", [
    ("--position-correction", "true", "'annealing'"), ("--algorithm", "magic", "'lsqml'"),
    ("--noise-model", "laplace", "'poisson'"), ("--batch-size", "0", "greater than or equal"),
    ("--backend", "torch", "'cupy'")])
def test_reconstruct_flags_are_checked_by_the_options_model(tmp_path, flag, value, allowed):
    # the flags go through the one model: a bad value exits 2 naming the flag, the value and
    # what is allowed, before any file is read
    from typer.testing import CliRunner

    from twin import cli

    r = CliRunner().invoke(cli.app, ["reconstruct", str(tmp_path / "none.cxi"), "-o",
                                     str(tmp_path / "o.h5"), flag, value])
    assert r.exit_code == 2
    assert flag in r.output and value in r.output and allowed in r.output
