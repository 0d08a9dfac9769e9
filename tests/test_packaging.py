"""What a clone or an installed twin has (issue 24, packaging): the scenarios ship with the
package, `scenario new --from NAME` works anywhere, the docs cite only what a clone has, and
`twin materials` speaks in units."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def twin(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "twin", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def _top_level() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((ROOT / "scenarios").glob("*.toml"))}


def test_the_package_data_scenarios_are_the_top_level_ones():
    shipped = resources.files("twin.data").joinpath("scenarios")
    got = {f.name: f.read_bytes() for f in shipped.iterdir() if f.name.endswith(".toml")}
    assert got == _top_level() and "quickstart.toml" in got


def test_the_wheel_carries_the_scenarios(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "build", "*.egg-info", "tests", "benchmarks", "reports", ".pytest_cache",
        ".hypothesis", "__pycache__"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation",
                        "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(src)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and "No module named" in r.stderr:
        pytest.skip(f"cannot build a wheel here: {r.stderr[-300:]}")
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("*.whl"))
    with zipfile.ZipFile(wheel) as z:
        got = {Path(n).name: z.read(n) for n in z.namelist()
               if n.startswith("twin/data/scenarios/") and n.endswith(".toml")}
    assert got == _top_level()


def test_scenario_new_from_a_shipped_name_outside_the_checkout(tmp_path):
    r = twin("scenario", "new", "plans/myplan", "--from", "quickstart", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "plans" / "myplan.toml"
    text = out.read_text()
    assert 'name = "myplan"' in text and "plans/" not in text.split("[sample]")[0]
    c = twin("scenario", "check", out, cwd=tmp_path)
    assert c.returncode == 0 and "'myplan'" in c.stdout, c.stderr
    bad = twin("scenario", "new", "x", "--from", "no_such_plan", cwd=tmp_path)
    assert bad.returncode == 2 and "quickstart" in bad.stderr and "--from" in bad.stderr


def test_docs_and_help_cite_only_what_a_clone_has():
    readme = (ROOT / "README.md").read_text()
    helps = [twin(*cmd, "--help").stdout for cmd in
             ([], ["reconstruct"], ["tomo"], ["scenario", "new"], ["simulate"])]
    for text in [readme, *helps]:
        assert "../shared" not in text and "CONTRACTS §" not in text \
            and "CONTRACTS.md" not in text
    assert "book/contracts.md" in readme
    contracts = (ROOT / "book" / "contracts.md").read_text()
    for n, topic in ((1, "Command line"), (2, "forecast"), (3, "CXI"), (4, "reconstruct"),
                     (5, "Data Exchange"), (6, "scenarios")):
        assert f"## {n}. " in contracts and topic in contracts


def test_materials_speaks_in_units_and_keeps_its_json_keys():
    r = twin("materials", "C6H10O2", "--density", "1.145", "--energy-kev", "11")
    assert r.returncode == 0, r.stderr
    j = json.loads(twin("materials", "C6H10O2", "--density", "1.145", "--energy-kev", "11",
                        "--json").stdout)
    assert list(j) == ["material", "formula", "density_g_per_cm3", "energy_kev", "delta",
                       "beta", "mu_per_m", "mu_en_over_rho_cm2_per_g", "attenuation_length_m"]
    assert "1.145 g/cm³" in r.stdout and "11 keV" in r.stdout
    assert f"{j['mu_per_m'] / 100:.4g} 1/cm" in r.stdout            # hand conversion
    assert f"{j['attenuation_length_m'] * 1e3:.4g} mm" in r.stdout
    assert "e-0" not in r.stdout                                  # no raw SI floats
