"""Guided scenarios: an annotated template loads back to the scenario it was written from,
every field has its comment, ``check`` prints the geometry, and the book's schema page is the
one the models generate."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from twin import scenario as sc
from twin.geometry import Geometry
from twin.workflows import scenario_tools as st

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))


def _leaf_paths(model, prefix=""):
    """Every leaf field path, walked independently of scenario_tools' own walker."""
    out = []
    for name, f in model.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, sc.BaseModel):
            out += _leaf_paths(ann, f"{prefix}{name}.")
        else:
            out.append(f"{prefix}{name}")
    return out


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_new_from_existing_loads_back(path, tmp_path):
    base = sc.load(path)
    out = st.write_new(tmp_path / "new.toml", "copy", base)
    again = sc.load(out)
    assert again.model_dump() == base.model_copy(update={"name": "copy"}).model_dump()


def test_every_field_has_a_comment_with_unit_range_and_default(tmp_path):
    text = st.annotated_toml(st.new_scenario("fresh"))
    lines = text.splitlines()
    section = ""
    seen = set()
    for i, line in enumerate(lines):
        m = re.match(r"^\[([\w.]+)\]$", line)
        if m:
            section = m.group(1) + "."
            continue
        m = re.match(r"^(?:# )?(\w+) =", line)
        if not m or i == 0:
            continue
        comment = lines[i - 1]
        assert comment.startswith("# unit:") and "default:" in comment, (line, comment)
        seen.add(section + m.group(1))
    expected = set(_leaf_paths(sc.Scenario)) - {"sweep"}
    assert expected <= seen, sorted(expected - seen)
    # units the names carry appear in the comments
    i = lines.index("fov_x_um = 6.0")
    assert "unit: µm" in lines[i - 1] and "allowed: > 0" in lines[i - 1]
    i = next(k for k, v in enumerate(lines) if v.startswith("coherent_modes ="))
    assert "≥ 1, ≤ 32" in lines[i - 1]


def test_new_without_base_is_a_valid_scenario(tmp_path):
    s = sc.load(st.write_new(tmp_path / "x.toml", "x"))
    assert s.name == "x" and tomllib.loads((tmp_path / "x.toml").read_text())["name"] == "x"


def test_check_prints_geometry(tmp_path):
    path = ROOT / "scenarios" / "quickstart.toml"
    r = subprocess.run([sys.executable, "-m", "twin", "scenario", "check", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    g = Geometry.from_scenario(sc.load(path))
    # the object pixel, independently: λz/(N p) with λ = hc/E
    lam = 1.23984198e-9 / 8.0
    pixel_nm = lam * 2.0 / (64 * 75e-6) * 1e9
    assert pixel_nm == pytest.approx(g.object_pixel_m * 1e9, rel=1e-6)
    assert f"{pixel_nm:.4g} nm" in r.stdout
    assert "overlap" in r.stdout and "count rate" in r.stdout
    assert f"{g.frames_per_projection:,} per projection" in r.stdout


def test_check_bad_file_exits_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text((ROOT / "scenarios" / "quickstart.toml").read_text()
                   .replace("fov_x_um = 6.0", "fov_x_um = -6.0"))
    r = subprocess.run([sys.executable, "-m", "twin", "scenario", "check", str(bad)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "scan.fov_x_um" in r.stderr


def test_new_refuses_to_overwrite(tmp_path):
    (tmp_path / "mine.toml").write_text("keep")
    r = subprocess.run([sys.executable, "-m", "twin", "scenario", "new", "mine"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2 and (tmp_path / "mine.toml").read_text() == "keep"


def test_book_schema_page_is_generated_from_the_models():
    page = (ROOT / "book" / "schema.md").read_text()
    assert page == st.schema_markdown() + "\n", (
        "book/schema.md is out of date: run `twin scenario schema -o book/schema.md`")
    assert "- file: schema" in (ROOT / "book" / "_toc.yml").read_text()
