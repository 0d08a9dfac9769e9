"""The emulated PandA's blocks: their fields, types and values, and what changed when.

Only the blocks a fly-scan uses: ``PCAP`` (capture), ``INENC1``/``INENC2`` (the x and y stage
encoders) and ``PULSE1`` (the detector trigger). Field names follow PandABlocks-server
(``BLOCKn.FIELD[.ATTR]``).
"""

from __future__ import annotations

from twin.acquisition.pcap import PcapRows, StreamedPcapRows

__all__ = ["BIT_LABELS", "DESCS", "ENUMS", "EXT_CAPTURE", "FIELDS", "NUMBERS", "POS_CAPTURE",
           "TIME_UNITS", "Device", "canonical", "in_group"]

# (field, type, subtype or None, description, initial value)
FIELDS = {
    "PCAP": [
        ("ENABLE", "bit_mux", None, "Gate to enable capture (high: capturing)", "ONE"),
        ("GATE", "bit_mux", None, "Gate of the frames", "ONE"),
        ("TRIG", "bit_mux", None, "Trigger of a capture", "PULSE1.OUT"),
        ("TRIG_EDGE", "param", "enum", "Edge of TRIG that captures", "Rising"),
        ("SHIFT_SUM", "param", "uint", "Right shift of sums", "0"),
        ("ACTIVE", "bit_out", None, "Capture in progress", "0"),
        ("TS_START", "ext_out", "timestamp", "Time of the first gate", "0"),
        ("TS_END", "ext_out", "timestamp", "Time of the last gate", "0"),
        ("TS_TRIGGER", "ext_out", "timestamp", "Time of the capture trigger", "0"),
        ("SAMPLES", "ext_out", "samples", "Clock ticks the gate was high", "0"),
        ("HEALTH", "read", "enum", "Capture health", "OK"),
    ],
    "INENC": [
        ("PROTOCOL", "param", "enum", "Encoder protocol", "Quadrature"),
        ("CLK_SRC", "param", "enum", "Clock source", "Internally Generated"),
        ("VAL", "pos_out", None, "Current position", "0"),
        ("HEALTH", "read", "enum", "Encoder health", "OK"),
    ],
    "PULSE": [
        ("ENABLE", "bit_mux", None, "Enable the pulse train", "ONE"),
        ("TRIG", "bit_mux", None, "Trigger input", "ZERO"),
        ("DELAY", "time", None, "Output pulse delay", "0"),
        ("WIDTH", "time", None, "Output pulse width (the exposure)", "0"),
        ("PULSES", "param", "uint", "Pulses per trigger (the frames)", "1"),
        ("STEP", "time", None, "Pulse period (1/frame rate)", "0"),
        ("OUT", "bit_out", None, "Output (the detector trigger)", "0"),
        ("QUEUED", "read", "uint", "Pulses queued", "0"),
    ],
}
NUMBERS = {"PCAP": 1, "INENC": 2, "PULSE": 1}
DESCS = {"PCAP": "Position capture control", "INENC": "Input encoder",
          "PULSE": "One-shot pulse delay and stretch"}
ENUMS = {
    ("PCAP", "TRIG_EDGE"): ["Rising", "Falling", "Either"],
    ("PCAP", "HEALTH"): ["OK", "Capture events too close together", "Samples overflow"],
    ("INENC", "PROTOCOL"): ["Quadrature", "SSI", "BiSS", "enDat"],
    ("INENC", "CLK_SRC"): ["Internally Generated", "From BITS"],
    ("INENC", "HEALTH"): ["OK", "Linkup error", "Timeout error", "CRC error"],
}
BIT_LABELS = ["ZERO", "ONE", "PULSE1.OUT", "PCAP.ACTIVE"]
POS_CAPTURE = ["No", "Value", "Diff", "Sum", "Mean", "Min", "Max", "Min Max",
                "Min Max Mean"]
EXT_CAPTURE = ["No", "Value"]
TIME_UNITS = ["min", "s", "ms", "us"]


class Device:
    """The fields' values and change tracking (shared by all connections).

    Parameters
    ----------
    cap : PcapRows or StreamedPcapRows
        The rows an arming streams (their scale and offsets become the encoders').
    frame_rate_hz, exposure_s : float
        Shown as ``PULSE1.STEP`` (1/rate) and ``PULSE1.WIDTH``.
    """

    def __init__(self, cap: PcapRows | StreamedPcapRows, frame_rate_hz: float,
                 exposure_s: float):
        self.cap = cap
        self.values: dict[str, str] = {}
        self.types: dict[str, tuple[str, str | None, str]] = {}
        self.seq = 0
        self.changed: dict[str, int] = {}
        for block, fields in FIELDS.items():
            for k in range(1, NUMBERS[block] + 1):
                for name, typ, sub, desc, init in fields:
                    key = f"{block}{k}.{name}"
                    self.types[key] = (typ, sub, desc)
                    self.values[key] = init
                    if typ == "time":
                        self.values[key + ".UNITS"] = "s"
                    if typ == "pos_out":
                        self.values[key + ".CAPTURE"] = "Value" if block == "INENC" else "No"
                        self.values[key + ".SCALE"] = repr(cap.scale_m)
                        self.values[key + ".OFFSET"] = repr(float(cap.offset_m[k - 1]))
                        self.values[key + ".UNITS"] = "m"
                    if typ == "ext_out":
                        self.values[key + ".CAPTURE"] = ("Value" if name == "TS_TRIGGER"
                                                         else "No")
                    if typ == "bit_mux":
                        self.values[key + ".DELAY"] = "0"
                    if typ == "param" and sub == "uint":
                        self.values[key + ".MAX"] = "4294967295"
        self.values["PULSE1.WIDTH"] = repr(float(exposure_s))
        self.values["PULSE1.STEP"] = repr(1.0 / float(frame_rate_hz))
        self.values["PULSE1.PULSES"] = str(cap.n_rows)
        self.values["PULSE1.TRIG"] = "PCAP.ACTIVE"
        for key in self.values:
            self.touch(key)

    def touch(self, key: str) -> None:
        """Mark ``key`` changed now (for ``*CHANGES?``).

        Parameters
        ----------
        key : str
            Full field name (``BLOCKn.FIELD[.ATTR]``); need not exist in :attr:`values`.
        """
        self.seq += 1
        self.changed[key] = self.seq

    def set(self, key: str, value: str) -> None:
        """Set ``key`` to ``value``, marking it changed if it differs.

        Parameters
        ----------
        key : str
            Full field name (``BLOCKn.FIELD[.ATTR]``); no check that it exists.
        value : str
            The new value, as the control port writes it.
        """
        if self.values.get(key) != value:
            self.values[key] = value
            self.touch(key)

    def captured_fields(self) -> list[tuple[str, str]]:
        """(field, capture) in the stream's column order.

        Returns
        -------
        list of (str, str)
            For ``PCAP.TS_TRIGGER``, ``PCAP.SAMPLES``, ``INENC1.VAL`` and ``INENC2.VAL`` in that
            order, those whose ``.CAPTURE`` is not ``"No"``, with the capture mode (e.g.
            ``"Value"``).
        """
        out = []
        for key in ("PCAP.TS_TRIGGER", "PCAP.SAMPLES", "INENC1.VAL", "INENC2.VAL"):
            full = key.replace("PCAP.", "PCAP1.")
            mode = self.values.get(full + ".CAPTURE", "No")
            if mode != "No":
                out.append((key, mode))
        return out


def canonical(name: str) -> str | None:
    """``PCAP.X`` → ``PCAP1.X``; ``INENC1.VAL`` stays; unknown blocks → None.

    Parameters
    ----------
    name : str
        A block or field name, with or without the block number.

    Returns
    -------
    str or None
        The name with the block numbered (``1`` when omitted); None for an unknown block or a
        block number out of range.
    """
    block, _, rest = name.partition(".")
    base = block.rstrip("0123456789")
    num = block[len(base):] or "1"
    if base not in NUMBERS or not num.isdigit() or not 1 <= int(num) <= NUMBERS[base]:
        return None
    return f"{base}{int(num)}.{rest}" if rest else f"{base}{int(num)}"


def in_group(key: str, dev: Device, group: str) -> bool:
    """Whether field ``key`` belongs to the ``*CHANGES.<group>?`` group (``""``: all).

    Attributes (two dots, ``BLOCKn.FIELD.ATTR``) belong to ``""`` and ``"ATTR"``; fields (one
    dot) to ``""`` and to the group of their type (CONFIG: param, bit_mux, pos_mux, time, write;
    BITS: bit_out; POSN: pos_out; READ: read); anything else to no group.

    Parameters
    ----------
    key : str
        Full field name.
    dev : Device
        Holds the fields' types.
    group : str
        ``""``, ``"CONFIG"``, ``"BITS"``, ``"POSN"``, ``"READ"``, ``"ATTR"``, or another name
        (no field belongs to it).

    Returns
    -------
    bool
    """
    if group in ("", "ATTR") and key.count(".") == 2:
        return True
    if key.count(".") != 1:
        return group == "" and False
    typ = dev.types.get(key, ("",))[0]
    if group == "":
        return True
    if group == "CONFIG":
        return typ in ("param", "bit_mux", "pos_mux", "time", "write")
    if group == "BITS":
        return typ == "bit_out"
    if group == "POSN":
        return typ == "pos_out"
    if group == "READ":
        return typ == "read"
    return False
