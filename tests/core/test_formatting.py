"""Values for people: each in the unit one would quote, checked against hand conversions."""

import pytest

from twin.core.formatting import LABELS, format_value, label, unit_of


@pytest.mark.parametrize("key, value, text", [
    ("resolution_forecast_m", 2.702e-7, "270.2 nm"),
    ("beam_diameter_m", 3.5e-6, "3.5 µm"),
    ("total_time_s", 24897.1, "6.92 h"),          # 24897.1 / 3600
    ("total_time_s", 19.3 * 86400, "19.3 days"),
    ("total_time_s", 45.0, "45 s"),
    ("exposure_s", 3.4e-4, "340 µs"),
    ("data_volume_bytes", 1_641_676_800_000, "1.642 TB"),
    ("dose_gy", 1.4336e5, "0.1434 MGy"),
    ("dose_gy", 5.738e4, "57.38 kGy"),
    ("frame_rate_hz", 110_000.0, "110 kHz"),
    ("overlap_fast", 0.957143, "95.7 %"),
    ("scan_rate_um2_per_s", 215.55, "215.6 µm²/s"),
    ("photons_total", 3.4068e12, "3.407 × 10¹² photons"),
    ("saturated", False, "no"),
    ("resolution_3d_forecast_m", None, "—"),
])
def test_values_in_the_unit_people_quote(key, value, text):
    assert format_value(key, value) == text


def test_every_label_has_a_unit_consistent_with_its_suffix():
    for key, (lab, unit) in LABELS.items():
        assert lab and label(key) == lab
        assert unit_of(key) == unit
        if key.endswith("_m"):
            assert unit == "m", key
        if key.endswith("_bytes"):
            assert unit == "B", key


def test_unknown_key_falls_back_to_its_suffix():
    assert unit_of("some_length_m") == "m" and label("some_length_m") == "some length"
