"""`twin scenario check` (issue 24, defect 9): each [sweep] value is checked against its field's
own type and bounds, and a number written as text is refused, naming the field and value."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from twin import scenario
from twin.core.errors import TwinInputError

ROOT = Path(__file__).resolve().parents[1]
BASE = (ROOT / "scenarios" / "quickstart.toml").read_text().split("[sweep]")[0]


def _check(tmp_path, text):
    p = tmp_path / "s.toml"
    p.write_text(text)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "twin", "scenario", "check", str(p)],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("line, needle", [
    ('"beam.flux_photons_per_s" = [1e7, -1e8, "abc"]', "-100000000.0"),
    ('"beam.flux_photons_per_s" = [1e7, "abc"]', "'abc'"),
    ('"beam.energy_kev" = [8.0, "8.0"]', "'8.0'"),
    ('"scan.frame_rate_hz" = [100.0, 0.0]', "0.0"),
    ('"reconstruction.algorithm" = ["epie", "magic"]', "'magic'"),
    ('"tomography.n_projections" = [10, 2.5]', "2.5"),
])
def test_bad_sweep_values_exit_2_naming_field_and_value(tmp_path, line, needle):
    r = _check(tmp_path, BASE + "[sweep]\n" + line + "\n")
    assert r.returncode == 2, r.stdout + r.stderr
    field = line.split('"')[1]
    assert field in r.stderr and needle in r.stderr and "Traceback" not in r.stderr


def test_good_sweep_values_still_pass(tmp_path):
    r = _check(tmp_path, BASE + '[sweep]\n"beam.flux_photons_per_s" = [1e7, 2e8]\n'
               '"reconstruction.algorithm" = ["epie", "rpie"]\n"tomography.n_projections" = '
               '[0, 10]\n"beam.energy_kev" = [8, 9.5]\n')
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("old, new, field", [
    ("energy_kev = 8.0", 'energy_kev = "8.0"', "beam.energy_kev"),
    ("energy_kev = 8.0", "energy_kev = true", "beam.energy_kev"),
    ("frame_rate_hz = ", 'frame_rate_hz = "1000" #', "scan.frame_rate_hz"),
])
def test_numbers_written_as_text_are_refused(old, new, field):
    assert old in BASE
    with pytest.raises(TwinInputError) as info:
        scenario.loads(BASE.replace(old, new, 1), source="q.toml")
    assert field in str(info.value) and "not a number" in str(info.value)
