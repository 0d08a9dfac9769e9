"""The PandA emulator's wire protocol on its own: no sockets, no event loop."""

import struct

import numpy as np
import pytest

from twin.acquisition.pcap import PcapRows
from twin.services.panda import data
from twin.services.panda.blocks import Device
from twin.services.panda.control import ControlProtocol, encode_reply


class _Arming:
    def __init__(self):
        self.running = False
        self.arms = 0

    def armed(self):
        return self.running

    def arm(self):
        self.running, self.arms = True, self.arms + 1

    def disarm(self):
        self.running = False


def _device(n=5):
    counts = np.stack([np.arange(n), -np.arange(n)], 1).astype(np.int32)
    rows = PcapRows(np.arange(n) * 1e-3, counts, 1e-9, np.array([-3e-9, 5e-9]), np.ones(n, bool))
    return Device(rows, 1000.0, 5e-4)


def test_arming_is_refused_twice_and_freezes_the_capture_fields():
    arming = _Arming()
    proto = ControlProtocol(_device(), arming)
    assert proto.answer("*PCAP.STATUS?", {}) == "OK =Idle"
    assert proto.answer("*PCAP.ARM=", {}) == "OK"
    assert proto.answer("*PCAP.ARM=", {}).startswith("ERR")
    assert arming.arms == 1
    assert proto.answer("*PCAP.STATUS?", {}) == "OK =Busy"
    assert proto.answer("INENC2.VAL.CAPTURE=No", {}).startswith("ERR")
    assert proto.answer("*PCAP.DISARM=", {}) == "OK"
    assert proto.answer("INENC2.VAL.CAPTURE=No", {}) == "OK"
    assert [f for f, _ in proto.dev.captured_fields()] == ["PCAP.TS_TRIGGER", "INENC1.VAL"]


def test_changes_report_only_what_changed_since_the_connection_last_asked():
    proto = ControlProtocol(_device(), _Arming())
    seen, other = {}, {}
    assert len(proto.answer("*CHANGES?", seen)) > 10        # first ask: everything
    assert proto.answer("*CHANGES?", seen) == []
    assert proto.answer("PULSE1.DELAY=0.5", seen) == "OK"
    assert proto.answer("*CHANGES?", seen) == ["PULSE1.DELAY=0.5"]
    assert "PULSE1.DELAY=0.5" in proto.answer("*CHANGES?", other)   # marks are per connection


@pytest.mark.parametrize("line, reply", [
    ("", "ERR Empty command"), ("*NOPE?", "ERR Unknown command"),
    ("garbage", "ERR Unknown command"),
    ("INENC3.VAL?", "ERR No such field"), ("PCAP.ACTIVE=1", "ERR Field is read only"),
    ("INENC1.VAL.SCALE=inf", "ERR Number expected"), ("FOO.*?", "ERR No such block")])
def test_bad_commands_get_an_error_reply(line, reply):
    assert ControlProtocol(_device(), _Arming()).answer(line, {}) == reply


def test_multi_line_replies_end_with_a_dot():
    assert encode_reply(["PCAP 1", "INENC 2"]) == b"!PCAP 1\n!INENC 2\n.\n"
    assert encode_reply("OK") == b"OK\n"


def test_capture_options():
    bare = data.parse_options(b"BARE\n")
    assert (bare.fmt, bare.proc, bare.header, bare.status, bare.one_shot) == \
        ("UNFRAMED", "UNSCALED", False, False, True)
    client = data.parse_options(b"XML FRAMED RAW\n")
    assert (client.fmt, client.proc, client.xml, client.header) == ("FRAMED", "RAW", True, True)
    for bad in (b"XML FRAMED", b"ZIP\n"):
        with pytest.raises(data.BadOptions, match="ERR Invalid capture options"):
            data.parse_options(bad)


def test_framed_raw_rows_carry_the_counts():
    dev = _device()
    fields = dev.captured_fields()
    counts = np.array([[7, -7], [-2 ** 31, 2 ** 31 - 1]], np.int32)
    cols = data.rows(dev, fields, np.array([0.0, 1.0]), counts)
    blob = data.encode(dev, fields, cols, data.parse_options(b"FRAMED RAW\n"))
    assert blob[:4] == b"BIN " and struct.unpack("<I", blob[4:8])[0] == len(blob)
    rec = np.frombuffer(blob[8:], dtype=[("t", "<i8"), ("x", "<i4"), ("y", "<i4")])
    assert rec["t"].tolist() == [0, 125_000_000]                # 8 ns ticks
    assert rec["x"].tolist() == [7, -2 ** 31]
    assert rec["y"].tolist() == [-7, 2 ** 31 - 1]
