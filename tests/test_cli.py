import json
import os
import subprocess
import sys

import pytest

CONTRACT_KEYS = ["energy_kev", "wavelength_m", "frame_rate_hz", "frames_per_projection",
                 "scan_rate_um2_per_s", "projection_time_s", "n_projections",
                 "n_projections_crowther", "total_time_s", "volume_rate_um3_per_s",
                 "data_volume_bytes", "dose_gy", "energy_deposited_j", "pixel_size_m",
                 "resolution_limit_m", "resolution_forecast_m", "peak_count_rate_per_pixel_hz",
                 "detector_max_count_rate_per_pixel_hz", "saturated"]


def twin(*args, cwd=None):
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("TWIN_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "twin", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def test_forecast_json_has_contract_keys(scenario_path):
    r = twin("forecast", scenario_path("brain_phantom_eiger_3khz"), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(CONTRACT_KEYS) <= set(d)
    assert d["n_projections"] == 501 and d["saturated"] is False
    assert isinstance(d["data_volume_bytes"], int)


def test_forecast_table(scenario_path):
    r = twin("forecast", scenario_path("quickstart"))
    assert r.returncode == 0, r.stderr
    assert "total_time_s" in r.stdout and "nm" in r.stdout


def test_materials_json():
    r = twin("materials", "C6H10O2", "--density", "1.145", "--energy-kev", "11", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for key in ("delta", "beta", "mu_per_m", "mu_en_over_rho_cm2_per_g", "attenuation_length_m"):
        assert d[key] > 0
    assert d["attenuation_length_m"] == pytest.approx(1 / d["mu_per_m"])


@pytest.mark.parametrize("args,needle", [
    (["materials", "Xq", "--energy-kev", "11"], "Xq"),
    (["materials", "H2O", "--density", "-1", "--energy-kev", "11"], "density"),
    (["forecast", "no_such_file.toml"], "no_such_file.toml"),
])
def test_bad_input_exits_2_without_traceback(args, needle):
    r = twin(*args)
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_bad_scenario_exits_2(tmp_path, scenario_path):
    text = scenario_path("quickstart").read_text().replace("flux_photons_per_s = 1e9",
                                                           "flux_photons_per_s = -5")
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    r = twin("forecast", bad)
    assert r.returncode == 2
    assert "beam.flux_photons_per_s" in r.stderr and "-5" in r.stderr
    assert "greater than 0" in r.stderr and "Traceback" not in r.stderr


def test_usage_error_exits_2():
    assert twin("forecast").returncode == 2
    assert twin("forecast", "x.toml", "--bogus").returncode == 2


def test_sweep_bad_suffix_leaves_nothing(tmp_path, scenario_path):
    out = tmp_path / "table.xlsx"
    r = twin("sweep", scenario_path("quickstart"), "-o", out)
    assert r.returncode == 2 and "--output" in r.stderr
    assert not out.exists()
