"""The data port's protocol (PandABlocks-server's capture stream), without sockets.

A client sends one capture-options line (``XML FRAMED RAW`` as the ``pandablocks`` client
sends, or ``ASCII``, ``BASE64``, ``UNFRAMED``, ``SCALED``/``UNSCALED``/``RAW``, ``NO_HEADER``,
``NO_STATUS``, ``ONE_SHOT``, ``BARE``) and is answered ``OK``; each acquisition then sends a
header, the rows (:func:`encode`) and ``END n reason``.

A row holds the captured fields in the order of :meth:`Device.captured_fields`: the trigger
time ``PCAP.TS_TRIGGER`` in 8 ns ticks, ``PCAP.SAMPLES`` (the gate's ticks), and the encoder
counts ``INENC1.VAL``/``INENC2.VAL`` (int32), scaled by their ``SCALE`` and ``OFFSET`` unless
the client asked for raw values.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass

import numpy as np

from twin.services.panda.blocks import Device, canonical

__all__ = ["KNOWN_OPTIONS", "TICK_S", "BadOptions", "DataOptions", "encode", "end_line",
           "field_meta", "header", "parse_options", "rows"]

TICK_S = 8e-9                  # the PandA's 125 MHz clock
KNOWN_OPTIONS = {"ASCII", "BASE64", "FRAMED", "UNFRAMED", "SCALED", "UNSCALED", "RAW",
                 "NO_HEADER", "NO_STATUS", "ONE_SHOT", "XML", "BARE", "DEFAULT"}

Fields = list[tuple[str, str]]


class BadOptions(ValueError):
    """A capture-options line the server refuses; ``str(exc)`` is the reply line."""


@dataclass(frozen=True)
class DataOptions:
    """A data client's choices.

    Attributes
    ----------
    fmt : {"ASCII", "BASE64", "FRAMED", "UNFRAMED"}
        Row encoding.
    proc : {"SCALED", "UNSCALED", "RAW"}
        Whether positions are scaled to metres.
    xml : bool
        Header as XML (else the text form).
    header, status, one_shot : bool
        Send a header per acquisition; send ``OK`` and ``END`` lines; stop after one.
    """

    fmt: str
    proc: str
    xml: bool
    header: bool
    status: bool
    one_shot: bool


def parse_options(line: bytes) -> DataOptions:
    """The options of a capture-options line.

    Parameters
    ----------
    line : bytes
        The line as received, with its line end.

    Returns
    -------
    DataOptions

    Raises
    ------
    BadOptions
        An unfinished line or an unknown option (the message is the ``ERR`` reply).
    """
    opts = set(line.decode("ascii", "replace").split())
    if not line.endswith(b"\n") or not opts <= KNOWN_OPTIONS:
        raise BadOptions(f"ERR Invalid capture options {sorted(opts - KNOWN_OPTIONS)}")
    if "BARE" in opts:
        opts |= {"UNFRAMED", "UNSCALED", "NO_HEADER", "NO_STATUS", "ONE_SHOT"}
    fmt = next((f for f in ("FRAMED", "UNFRAMED", "BASE64") if f in opts), "ASCII")
    proc = next((p for p in ("RAW", "UNSCALED") if p in opts), "SCALED")
    return DataOptions(fmt, proc, "XML" in opts, "NO_HEADER" not in opts,
                       "NO_STATUS" not in opts, "ONE_SHOT" in opts)


def end_line(n_sent: int, reason: str) -> bytes:
    r"""The line that ends an acquisition's stream.

    Parameters
    ----------
    n_sent : int
        Number of rows sent in this acquisition.
    reason : str
        The end reason (e.g. ``"Ok"``, ``"Disarmed"``).

    Returns
    -------
    bytes
        ``b"END <n_sent> <reason>\n"``.
    """
    return f"END {n_sent} {reason}\n".encode()


def rows(dev: Device, fields: Fields, t: np.ndarray, counts: np.ndarray) -> dict:
    """Raw columns of the captured ``fields`` for triggers ``t`` (s) and ``counts`` (k, 2).

    Parameters
    ----------
    dev : Device
        Holds ``PULSE1.WIDTH`` (the exposure, seconds), which sets ``PCAP.SAMPLES``.
    fields : list of (str, str)
        Captured (field, capture mode) pairs, from :meth:`Device.captured_fields`.
    t : ndarray (k,) float
        Trigger times, seconds.
    counts : ndarray (k, 2) int
        Encoder counts of ``INENC1`` (column 0) and ``INENC2`` (column 1).

    Returns
    -------
    dict
        Field name → (k,) array: ``PCAP.TS_TRIGGER`` as int64 8 ns ticks (rounded),
        ``PCAP.SAMPLES`` as uint32 ticks of the exposure, encoder fields as the counts' column.
    """
    cols = {}
    for f, _ in fields:
        if f == "PCAP.TS_TRIGGER":
            cols[f] = np.round(t / TICK_S).astype(np.int64)
        elif f == "PCAP.SAMPLES":
            w = float(dev.values["PULSE1.WIDTH"])
            cols[f] = np.full(len(t), int(round(w / TICK_S)), np.uint32)
        else:
            axis = 0 if f.startswith("INENC1") else 1
            cols[f] = counts[:, axis]
    return cols


def field_meta(dev: Device, f: str):
    """(raw dtype, scale, offset, units) of a captured field (scale None: not scalable).

    Parameters
    ----------
    dev : Device
        Holds the encoders' ``SCALE``, ``OFFSET`` and ``UNITS``.
    f : str
        Captured field name (``PCAP.TS_TRIGGER``, ``PCAP.SAMPLES`` or an encoder's ``VAL``).

    Returns
    -------
    tuple
        ``("int64", TICK_S, 0.0, "s")`` for the trigger time, ``("uint32", None, None, None)`` for
        the samples, ``("int32", scale, offset, units)`` for an encoder (scale in metres per
        count when ``units`` is ``"m"``).
    """
    if f == "PCAP.TS_TRIGGER":
        return "int64", TICK_S, 0.0, "s"
    if f == "PCAP.SAMPLES":
        return "uint32", None, None, None
    key = canonical(f)
    v = dev.values
    return ("int32", float(v[key + ".SCALE"]), float(v[key + ".OFFSET"]), v[key + ".UNITS"])


def header(dev: Device, fields: Fields, opts: DataOptions) -> str:
    """The header sent when an acquisition starts (XML or text, as the client asked).

    Parameters
    ----------
    dev : Device
        Holds the fields' scales and units.
    fields : list of (str, str)
        Captured (field, capture mode) pairs in column order.
    opts : DataOptions
        The client's choices (``xml``, ``proc``, ``fmt``).

    Returns
    -------
    str
        The header, ending with an empty line; scaled fields are typed ``double`` when
        ``opts.proc`` is ``"SCALED"``.
    """
    sample_bytes = 0
    meta = []
    for f, mode in fields:
        raw, scale, offset, units = field_meta(dev, f)
        typ = raw if opts.proc != "SCALED" or scale is None else "double"
        sample_bytes += np.dtype(typ).itemsize
        meta.append((f, typ, mode, scale, offset, units))
    process = {"SCALED": "Scaled", "UNSCALED": "Unscaled", "RAW": "Raw"}[opts.proc]
    form = {"ASCII": "ASCII", "BASE64": "Base64", "FRAMED": "Framed",
            "UNFRAMED": "Unframed"}[opts.fmt]
    if opts.xml:
        out = ["<header>",
               f'<data missed="0" process="{process}" format="{form}" '
               f'sample_bytes="{sample_bytes}" />', "<fields>"]
        for f, typ, mode, scale, offset, units in meta:
            extra = ("" if scale is None else
                     f' scale="{scale!r}" offset="{offset!r}" units="{units}"')
            out.append(f'<field name="{f}" type="{typ}" capture="{mode}"{extra} />')
        out += ["</fields>", "</header>"]
    else:
        out = ["missed: 0", f"process: {process}", f"format: {form}"]
        if opts.fmt != "ASCII":
            out.append(f"sample_bytes: {sample_bytes}")
        out.append("fields:")
        for f, typ, mode, scale, offset, units in meta:
            extra = ("" if scale is None
                     else f" scale: {scale!r} offset: {offset!r} units: {units}")
            out.append(f" {f} {typ} {mode}{extra}")
    return "\n".join(out) + "\n\n"


def encode(dev: Device, fields: Fields, cols: dict, opts: DataOptions) -> bytes:
    """Rows ``cols`` (from :func:`rows`) as sent in the client's format.

    SCALED values are raw·scale + offset as little-endian float64; other values keep their raw
    dtype. ASCII: one line per row; FRAMED: ``BIN`` + uint32 length (body + 8) + packed rows;
    BASE64: packed rows in 57-byte chunks, one base64 line each; UNFRAMED: the packed rows.

    Parameters
    ----------
    dev : Device
        Holds the fields' scales and offsets.
    fields : list of (str, str)
        Captured (field, capture mode) pairs in column order.
    cols : dict
        Field name → (k,) raw column, as :func:`rows` returns.
    opts : DataOptions
        The client's choices (``fmt``, ``proc``).

    Returns
    -------
    bytes
        The encoded rows; empty when there are none.
    """
    n = len(next(iter(cols.values()))) if cols else 0
    if n == 0:
        return b""
    values = []
    dtypes = []
    for f, _ in fields:
        raw, scale, offset, _ = field_meta(dev, f)
        v = cols[f]
        if opts.proc == "SCALED" and scale is not None:
            values.append(v.astype(np.float64) * scale + offset)
            dtypes.append((f, "<f8"))
        else:
            values.append(v)
            dtypes.append((f, "<" + np.dtype(raw).str[1:]))
    if opts.fmt == "ASCII":
        lines = [" " + " ".join(repr(float(c[i])) if c.dtype.kind == "f" else str(int(c[i]))
                                for c in values) for i in range(n)]
        return ("\n".join(lines) + "\n").encode()
    rec = np.empty(n, dtype=dtypes)
    for (name, _), v in zip(dtypes, values):
        rec[name] = v
    body = rec.tobytes()
    if opts.fmt == "FRAMED":
        return b"BIN " + struct.pack("<I", len(body) + 8) + body
    if opts.fmt == "BASE64":
        return b"".join(b" " + base64.b64encode(body[k:k + 57]) + b"\n"
                        for k in range(0, len(body), 57))
    return body
