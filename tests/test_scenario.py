import math
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin import scenario
from twin.core.errors import TwinInputError

CONTRACT_SCENARIOS = ["brain_phantom_eiger_3khz", "siemens_star_selun_110khz", "brain_1mm3_dlsr",
                      "brain_1mm3_dlsr_multibeam", "brain_1mm3_dlsr_multibeam_relaxed",
                      "ic_rapid_349", "ic_rapid_21", "quickstart"]
QUICK = (Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.toml").read_text()


@pytest.mark.parametrize("name", CONTRACT_SCENARIOS)
def test_contract_scenarios_load(scenario_path, name):
    s = scenario.load(scenario_path(name))
    assert s.name == name


def _edit(section: str, key: str, value: str) -> str:
    """The quickstart with `key = value` set in [section]."""
    lines, out, inside, done = QUICK.splitlines(), [], False, False
    for line in lines:
        if line.startswith("["):
            if inside and not done:
                out.append(f"{key} = {value}")
                done = True
            inside = line.strip() == f"[{section}]"
        if inside and line.split("=")[0].strip() == key:
            line, done = f"{key} = {value}", True
        out.append(line)
    if inside and not done:
        out.append(f"{key} = {value}")
        done = True
    if not done:
        out += [f"[{section}]", f"{key} = {value}"]
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("section,key,value,needle", [
    ("beam", "flux_photons_per_s", "-1e9", "beam.flux_photons_per_s"),
    ("beam", "flux_photons_per_s", "nan", "beam.flux_photons_per_s"),
    ("beam", "energy_kev", "inf", "beam.energy_kev"),
    ("beam", "energy_kev", '"eleven"', "beam.energy_kev"),
    ("scan", "frame_rate_hz", "0", "scan.frame_rate_hz"),
    ("scan", "frame_rate_hz", "5000.0", "3000"),            # above the EIGER's maximum
    ("scan", "fast_step_um", "50.0", "fast_step_um"),
    ("scan", "exposure_s", "0.5", "exposure_s"),
    ("scan", "bogus_key", "1", "bogus_key"),
    ("sample", "material", '"unobtainium"', "sample.material"),
    ("detector", "preset", '"pilatus9000"', "pilatus9000"),
    ("detector", "crop", "4096", "crop"),
    ("detector", "mode", '"4bit"', "4bit"),
    ("tomography", "n_projections", "-3", "tomography.n_projections"),
    ("reconstruction", "algorithm", '"magic"', "reconstruction.algorithm"),
])
def test_bad_fields_are_named(section, key, value, needle):
    with pytest.raises(TwinInputError) as info:
        scenario.loads(_edit(section, key, value), source="q.toml")
    msg = str(info.value)
    assert needle in msg and "q.toml" in msg


def test_malformed_toml_and_missing_file(tmp_path):
    with pytest.raises(TwinInputError, match="not valid TOML"):
        scenario.loads("[beam\nenergy_kev = 1")
    with pytest.raises(TwinInputError, match="does not exist"):
        scenario.load(tmp_path / "none.toml")


def test_missing_section_is_named():
    text = QUICK.replace("[beam]", "[beam_typo]")
    with pytest.raises(TwinInputError, match="beam"):
        scenario.loads(text)


def test_sweep_paths_are_checked():
    bad = QUICK + '\n"scan.no_such_field" = [1, 2]\n'
    with pytest.raises(TwinInputError, match="scan.no_such_field"):
        scenario.loads(bad)


def test_with_values_validates():
    s = scenario.loads(QUICK)
    assert s.with_values({"beam.flux_photons_per_s": 5e8}).beam.flux_photons_per_s == 5e8
    with pytest.raises(TwinInputError, match="beam.flux_photons_per_s"):
        s.with_values({"beam.flux_photons_per_s": -1})


def test_crowther():
    assert scenario.crowther_projections(1e-3, 100e-9) == math.ceil(math.pi / 2 * 1e4)


# --- fuzzing: any mutation of a valid file either loads or is a TwinInputError -------------

_values = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=12), st.booleans(), st.lists(st.integers(), max_size=3))


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, list):
        return "[" + ", ".join(str(i) for i in v) + "]"
    return str(v)


_KEYS = [(sec, key) for sec, table in tomllib.loads(QUICK).items() if isinstance(table, dict)
         for key in table if not isinstance(table[key], dict)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_KEYS), _values)
def test_fuzz_field_values(target, value):
    section, key = target
    text = _edit(section, key, _toml_value(value))
    try:
        scenario.loads(text)
    except TwinInputError as exc:
        assert str(exc)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(QUICK) - 1), st.integers(1, 20), st.text(max_size=5))
def test_fuzz_raw_text(start, length, insert):
    text = QUICK[:start] + insert + QUICK[start + length:]
    try:
        scenario.loads(text)
    except TwinInputError as exc:
        assert str(exc)
