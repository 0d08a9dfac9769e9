"""A PandA box as a TCP server (``twin panda``): the PandABlocks protocol on the scenario's scan.

The control port (8888) answers the ASCII command protocol of PandABlocks-server for the blocks
a fly-scan uses: ``PCAP`` (capture), ``INENC1``/``INENC2`` (the x and y stage encoders) and
``PULSE1`` (the detector trigger). System commands: ``*IDN?``, ``*BLOCKS?``, ``*DESC.…?``,
``*ENUMS.…?``, ``*CHANGES[.GROUP]?``, ``*PCAP.ARM=``, ``*PCAP.DISARM=``, ``*PCAP.CAPTURED?``;
field gets and sets (``INENC1.VAL.CAPTURE=Value``, ``PULSE1.WIDTH?``, ``BLOCK.*?``), tables
(``NAME<`` … empty line) accepted and ignored. Anything else is answered ``ERR …``.

The data port (8889) takes a capture-options line (``XML FRAMED RAW`` as the ``pandablocks``
client sends, or ``ASCII``, ``BASE64``, ``UNFRAMED``, ``SCALED``/``UNSCALED``/``RAW``,
``NO_HEADER``, ``NO_STATUS``, ``ONE_SHOT``, ``BARE``), answers ``OK`` and, each time PCAP is
armed, sends the header, one row per detector trigger and ``END n Ok``.

A row is what the scenario's PandA captured for one frame (:func:`twin.acquisition.scan.
panda_capture`, the same seed and positions as ``twin simulate``'s CXI file): the trigger time
(``PCAP.TS_TRIGGER``, 8 ns ticks), and the x and y encoder counts (``INENC1.VAL``,
``INENC2.VAL``, int32) whose scale (the encoder resolution, m per count) and offset (minus the
object grid's origin) make the scaled value equal the CXI's ``/entry_1/data_1/translation``.
Frames the box could not catch (frame rate above its capture rate) carry the interpolated
position the file records, rounded to a count. Rows leave at the trigger times divided by
``speed`` after arming (``speed`` = 1: real time).

Robustness: every connection is served on its own; a client that disconnects, sends an unknown
command or a malformed line gets ``ERR`` or is dropped, never the server; a data client that
stops reading is dropped from the acquisition after :data:`OVERRUN_ROWS` rows waiting (its
stream ends ``Data overrun`` if it ever reads again).
"""

from __future__ import annotations

import asyncio
import base64
import math
import struct
import threading
import time
from dataclasses import dataclass

import numpy as np

from twin.core.errors import TwinInputError

CONTROL_PORT = 8888
DATA_PORT = 8889
TICK_S = 8e-9                  # the PandA's 125 MHz clock
OVERRUN_ROWS = 1_000_000       # rows queued for one data client before it is dropped
SOFTWARE = "PandA SW: 3.0-twin FPGA: 0.0.0 00000000 00000000 rootfs: twin-emulator"


@dataclass(frozen=True)
class Capture:
    """The rows an acquisition streams.

    Attributes
    ----------
    t_trigger_s : float (N,)
        Detector trigger (exposure start) times from the start of the scan.
    counts : int32 (N, 2)
        x, y encoder counts.
    scale_m : float
        Metres per count (the encoder resolution).
    offset_m : (2,) float
        x, y offsets: scaled = counts · scale + offset.
    captured : bool (N,)
        Whether the box caught the frame (else the file's interpolated position).
    """

    t_trigger_s: np.ndarray
    counts: np.ndarray
    scale_m: float
    offset_m: np.ndarray
    captured: np.ndarray

    @property
    def n_rows(self) -> int:
        return len(self.t_trigger_s)

    @property
    def duration_s(self) -> float:
        return float(self.t_trigger_s[-1]) if len(self.t_trigger_s) else 0.0

    def blocks(self):
        """Yield ``(t_trigger_s, counts)`` blocks in order (here: one, the whole)."""
        yield self.t_trigger_s, self.counts


class StreamedCapture:
    """Rows made block by block as they are streamed: a huge scan in bounded memory.

    Parameters
    ----------
    n_rows : int
        Rows in the whole acquisition.
    duration_s : float
        Trigger time of the last row.
    scale_m : float
        Metres per count.
    offset_m : (2,) float
        x, y offsets: scaled = counts · scale + offset.
    make_blocks : callable
        ``make_blocks()`` yields ``(t_trigger_s, counts)`` blocks in order, afresh on each call
        (each arming streams the acquisition from its start).
    """

    def __init__(self, n_rows: int, duration_s: float, scale_m: float, offset_m, make_blocks):
        self.n_rows, self.duration_s = int(n_rows), float(duration_s)
        self.scale_m, self.offset_m = float(scale_m), np.asarray(offset_m, float)
        self._make = make_blocks

    def blocks(self):
        """Yield ``(t_trigger_s, counts)`` blocks in order."""
        yield from self._make()


def capture_from_plan(p) -> Capture:
    """The stream of a :class:`twin.workflows.simulate.Plan` (its trajectory and capture).

    Counts are the captured positions from the scan centre in encoder steps; the offset is
    minus the object grid's origin, so that ``counts · scale + offset`` equals the CXI
    translations (``capture.positions_m − origin_m``).
    """
    sc = p.scenario.scan
    res = sc.encoder_resolution_nm * 1e-9
    if not res > 0:
        # an ideal encoder: count in 0.1 nm steps
        res = 1e-10
    counts = np.round(p.capture.positions_m / res)
    if np.any(np.abs(counts) > 2 ** 31 - 1):
        raise TwinInputError("scan.encoder_resolution_nm", sc.encoder_resolution_nm,
                             "the scan range exceeds 32-bit encoder counts at this resolution")
    return Capture(np.asarray(p.trajectory.t_start_s, float), counts.astype(np.int32), res,
                   -np.asarray(p.origin_m, float), np.asarray(p.capture.captured, bool))


# ----------------------------------------------------------------------------- the blocks

# (field, type, subtype or None, description, initial value)
_FIELDS = {
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
_NUMBERS = {"PCAP": 1, "INENC": 2, "PULSE": 1}
_DESCS = {"PCAP": "Position capture control", "INENC": "Input encoder",
          "PULSE": "One-shot pulse delay and stretch"}
_ENUMS = {
    ("PCAP", "TRIG_EDGE"): ["Rising", "Falling", "Either"],
    ("PCAP", "HEALTH"): ["OK", "Capture events too close together", "Samples overflow"],
    ("INENC", "PROTOCOL"): ["Quadrature", "SSI", "BiSS", "enDat"],
    ("INENC", "CLK_SRC"): ["Internally Generated", "From BITS"],
    ("INENC", "HEALTH"): ["OK", "Linkup error", "Timeout error", "CRC error"],
}
_BIT_LABELS = ["ZERO", "ONE", "PULSE1.OUT", "PCAP.ACTIVE"]
_POS_CAPTURE = ["No", "Value", "Diff", "Sum", "Mean", "Min", "Max", "Min Max",
                "Min Max Mean"]
_EXT_CAPTURE = ["No", "Value"]
_TIME_UNITS = ["min", "s", "ms", "us"]


class _Device:
    """The fields' values and change tracking (shared by all connections)."""

    def __init__(self, cap: Capture, frame_rate_hz: float, exposure_s: float):
        self.cap = cap
        self.values: dict[str, str] = {}
        self.types: dict[str, tuple[str, str | None, str]] = {}
        self.seq = 0
        self.changed: dict[str, int] = {}
        for block, fields in _FIELDS.items():
            for k in range(1, _NUMBERS[block] + 1):
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
        self.seq += 1
        self.changed[key] = self.seq

    def set(self, key: str, value: str) -> None:
        if self.values.get(key) != value:
            self.values[key] = value
            self.touch(key)

    def captured_fields(self) -> list[tuple[str, str]]:
        """(field, capture) in the stream's column order."""
        out = []
        for key in ("PCAP.TS_TRIGGER", "PCAP.SAMPLES", "INENC1.VAL", "INENC2.VAL"):
            full = key.replace("PCAP.", "PCAP1.")
            mode = self.values.get(full + ".CAPTURE", "No")
            if mode != "No":
                out.append((key, mode))
        return out


def _canonical(name: str) -> str | None:
    """``PCAP.X`` → ``PCAP1.X``; ``INENC1.VAL`` stays; unknown blocks → None."""
    block, _, rest = name.partition(".")
    base = block.rstrip("0123456789")
    num = block[len(base):] or "1"
    if base not in _NUMBERS or not num.isdigit() or not 1 <= int(num) <= _NUMBERS[base]:
        return None
    return f"{base}{int(num)}.{rest}" if rest else f"{base}{int(num)}"


# ----------------------------------------------------------------------------- the server


class PandaServer:
    """The emulator: serve with :meth:`serve` (asyncio) or :meth:`start` (a thread).

    Parameters
    ----------
    capture : Capture
        The rows to stream on each arming.
    frame_rate_hz, exposure_s : float
        Shown as ``PULSE1.STEP`` (1/rate) and ``PULSE1.WIDTH``.
    speed : float
        Rows leave at trigger time / speed after arming (1: real time; > 0).
    host : str
        Address to bind (any loopback address, 127.0.0.x).
    control_port, data_port : int
    """

    def __init__(self, capture: Capture, frame_rate_hz: float, exposure_s: float,
                 speed: float = 1.0, host: str = "127.0.0.1",
                 control_port: int = CONTROL_PORT, data_port: int = DATA_PORT):
        if not (np.isfinite(speed) and speed > 0):
            raise TwinInputError("--speed", speed, "must be a positive factor (1 = real time)")
        self.dev = _Device(capture, frame_rate_hz, exposure_s)
        self.speed = float(speed)
        self.host = host
        self.ports = (control_port, data_port)
        self._subscribers: set[asyncio.Queue] = set()
        self._conns: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._acq: asyncio.Task | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self.acquisitions = 0

    # -- running ----------------------------------------------------------------------

    async def serve(self, ready: threading.Event | None = None) -> None:
        """Bind both ports and serve until :meth:`stop`."""
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        try:
            self._servers = [
                await asyncio.start_server(self._control, self.host, self.ports[0],
                                           reuse_address=True),
                await asyncio.start_server(self._data, self.host, self.ports[1],
                                           reuse_address=True)]
        except OSError as exc:
            for srv in self._servers:
                srv.close()
            self._servers = []
            raise TwinInputError("--host", self.host,
                                 f"cannot listen on ports {self.ports}: {exc}") from None
        if ready is not None:
            ready.set()
        try:
            await self._stopped.wait()
        finally:
            if self._acq is not None:
                self._acq.cancel()
            for srv in self._servers:
                srv.close()
            # close the connections (their handlers then end on their own); cancel stragglers
            for w in list(self._writers):
                w.close()
            conns = [t for t in self._conns if not t.done()]
            if conns:
                _, pending = await asyncio.wait(conns, timeout=2)
                for t in pending:
                    t.cancel()
            for srv in self._servers:
                await srv.wait_closed()

    def start(self, timeout_s: float = 10.0) -> "PandaServer":
        """Serve from a background thread; returns once the ports are bound."""
        ready = threading.Event()
        self._error: BaseException | None = None

        def run():
            try:
                asyncio.run(self.serve(ready))
            except BaseException as exc:  # noqa: BLE001 - reported by start()
                self._error = exc
                ready.set()

        self._thread = threading.Thread(target=run, name="twin-panda", daemon=True)
        self._thread.start()
        ready.wait(timeout_s)
        if not self._servers:
            self._thread.join(timeout_s)
        if self._error is not None:
            raise self._error
        if not self._servers:
            raise RuntimeError("the PandA emulator did not start")
        return self

    def stop(self) -> None:
        """Stop serving (from any thread) and wait for the thread to end."""
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- control port -----------------------------------------------------------------

    async def _control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._conns.add(asyncio.current_task())
        self._writers.add(writer)
        seen: dict[str, int] = {}
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                text = line.decode("ascii", "replace").rstrip("\r\n")
                if text.endswith("<") and "?" not in text and "=" not in text:
                    # a table or multi-line write: consume to the empty line
                    while True:
                        more = await reader.readline()
                        if not more or not more.strip():
                            break
                    reply = self._table_write(text[:-1])
                else:
                    try:
                        reply = self._command(text, seen)
                    except Exception as exc:  # noqa: BLE001 - never let a line kill the server
                        reply = f"ERR {type(exc).__name__}: {exc}"
                if isinstance(reply, list):
                    out = "".join(f"!{r}\n" for r in reply) + ".\n"
                else:
                    out = reply + "\n"
                writer.write(out.encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError):
            pass
        finally:
            await self._close(writer)

    async def _close(self, writer) -> None:
        """Forget and close a client connection, whatever state its peer left it in."""
        self._writers.discard(writer)
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass

    def _table_write(self, name: str) -> str:
        key = _canonical(name.rstrip("<B|"))
        return "OK" if key is not None else "ERR No such block"

    def _command(self, text: str, seen: dict[str, int]) -> str | list[str]:
        dev = self.dev
        if not text.strip():
            return "ERR Empty command"
        if text == "*IDN?":
            return "OK =" + SOFTWARE
        if text == "*BLOCKS?":
            return [f"{b} {n}" for b, n in _NUMBERS.items()]
        if text == "*PCAP.ARM=":
            if self._acq is not None and not self._acq.done():
                return "ERR Data capture already armed"
            self._acq = asyncio.get_running_loop().create_task(self._acquire())
            return "OK"
        if text == "*PCAP.DISARM=":
            if self._acq is not None and not self._acq.done():
                self._acq.cancel()
            return "OK"
        if text == "*PCAP.CAPTURED?":
            return [f"{f} {m}" for f, m in dev.captured_fields()]
        if text == "*PCAP.STATUS?":
            armed = self._acq is not None and not self._acq.done()
            return "OK =" + ("Busy" if armed else "Idle")
        if text.startswith("*CHANGES") and text.endswith("?"):
            group = text[len("*CHANGES"):-1].lstrip(".")
            if group not in ("", "CONFIG", "BITS", "POSN", "READ", "ATTR", "TABLE", "METADATA"):
                return "ERR Unknown changes group"
            out = []
            for key, seq in dev.changed.items():
                if seq > seen.get(group, 0) and _in_group(key, dev, group):
                    out.append(f"{key}={dev.values[key]}")
            seen[group] = dev.seq
            return out
        if text.startswith("*DESC.") and text.endswith("?"):
            name = text[6:-1]
            block = name.split(".")[0].rstrip("0123456789")
            if "." not in name:
                return ("OK =" + _DESCS[block]) if block in _DESCS else "ERR No such block"
            key = _canonical(name)
            if key is None or key.split(".", 2)[0] + "." + key.split(".")[1] not in dev.types:
                return "OK =" if key is not None and "[]" in name else "ERR No such field"
            return "OK =" + dev.types[".".join(key.split(".")[:2])][2]
        if text.startswith("*ENUMS.") and text.endswith("?"):
            return self._enums(text[7:-1])
        if text.startswith("*"):
            return "ERR Unknown command"
        if text.endswith(".*?"):
            base = text[:-3]
            if base.rstrip("0123456789") not in _FIELDS:
                return "ERR No such block"
            rows = []
            for i, (name, typ, sub, _, _) in enumerate(_FIELDS[base.rstrip("0123456789")]):
                rows.append(f"{name} {i} {typ}" + (f" {sub}" if sub else ""))
            return rows
        if text.endswith("?"):
            key = _canonical(text[:-1])
            if key is None or key not in dev.values:
                return "ERR No such field"
            return "OK =" + dev.values[key]
        if "=" in text:
            name, _, value = text.partition("=")
            key = _canonical(name)
            if key is None or key not in dev.values:
                return "ERR No such field"
            field = ".".join(key.split(".")[:2])
            typ = dev.types[field][0]
            if key == field and typ in ("bit_out", "pos_out", "ext_out", "read"):
                return "ERR Field is read only"
            if key.endswith(".CAPTURE"):
                allowed = _EXT_CAPTURE if typ == "ext_out" else _POS_CAPTURE
                if value not in allowed:
                    return "ERR Invalid enumeration value"
                if value not in ("No", "Value"):
                    return "ERR the twin's PandA captures Value only"
            if self._acq is not None and not self._acq.done() and key.endswith(".CAPTURE"):
                return "ERR Cannot change capture while armed"
            if key.endswith((".SCALE", ".OFFSET")):
                try:
                    if not math.isfinite(float(value)):
                        raise ValueError
                except ValueError:
                    return "ERR Number expected"
            dev.set(key, value)
            return "OK"
        return "ERR Unknown command"

    def _enums(self, name: str) -> list[str] | str:
        parts = name.split(".")
        base = parts[0].rstrip("0123456789")
        if base not in _FIELDS or len(parts) < 2:
            return "ERR No such field"
        field = parts[1]
        spec = next((f for f in _FIELDS[base] if f[0] == field), None)
        if spec is None:
            return "ERR No such field"
        attr = parts[2] if len(parts) > 2 else None
        typ = spec[1]
        if attr == "CAPTURE":
            return _EXT_CAPTURE if typ == "ext_out" else _POS_CAPTURE
        if attr == "UNITS" and typ == "time":
            return _TIME_UNITS
        if attr is None and typ == "bit_mux":
            return _BIT_LABELS
        if attr is None and (base, field) in _ENUMS:
            return _ENUMS[(base, field)]
        return "ERR Field has no enumeration"

    # -- acquisition and data port ---------------------------------------------------------

    async def _acquire(self) -> None:
        dev = self.dev
        fields = dev.captured_fields()
        subs = list(self._subscribers)
        for q in subs:
            q.put_nowait(("start", fields))
        dev.set("PCAP1.ACTIVE", "1")
        self.acquisitions += 1
        sent = 0
        reason = "Ok"
        t0 = time.monotonic()
        try:
            for t, counts in dev.cap.blocks():      # one block of rows in memory at a time
                b, nb = 0, len(t)
                while b < nb:
                    now = (time.monotonic() - t0) * self.speed
                    k = int(np.searchsorted(t, now, side="right"))
                    k = max(k, b + 1) if now >= t[b] else b
                    if k > b:
                        rows = self._rows(fields, t[b:k], counts[b:k])
                        for q in subs:
                            if q.qsize() < OVERRUN_ROWS:
                                q.put_nowait(("rows", rows))
                            else:
                                q.put_nowait(("overrun", None))
                        sent, b = sent + min(k, nb) - b, min(k, nb)
                    if b < nb:
                        wait = (t[b] - now) / self.speed
                        await asyncio.sleep(min(max(wait, 0.0), 0.05))
                    else:
                        await asyncio.sleep(0)      # let the clients drain between blocks
        except asyncio.CancelledError:
            reason = "Disarmed"
        finally:
            for q in subs:
                q.put_nowait(("end", (sent, reason)))
            dev.set("PCAP1.ACTIVE", "0")

    def _rows(self, fields, t: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
        cols = {}
        for f, _ in fields:
            if f == "PCAP.TS_TRIGGER":
                cols[f] = np.round(t / TICK_S).astype(np.int64)
            elif f == "PCAP.SAMPLES":
                w = float(self.dev.values["PULSE1.WIDTH"])
                cols[f] = np.full(len(t), int(round(w / TICK_S)), np.uint32)
            else:
                axis = 0 if f.startswith("INENC1") else 1
                cols[f] = counts[:, axis]
        return cols

    def _field_meta(self, f: str):
        """(raw dtype, scale, offset, units) of a captured field."""
        if f == "PCAP.TS_TRIGGER":
            return "int64", TICK_S, 0.0, "s"
        if f == "PCAP.SAMPLES":
            return "uint32", None, None, None
        key = _canonical(f)
        v = self.dev.values
        return ("int32", float(v[key + ".SCALE"]), float(v[key + ".OFFSET"]),
                v[key + ".UNITS"])

    async def _data(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._conns.add(asyncio.current_task())
        self._writers.add(writer)
        q: asyncio.Queue = asyncio.Queue()
        try:
            line = await asyncio.wait_for(reader.readline(), 60)
            opts = set(line.decode("ascii", "replace").split())
            known = {"ASCII", "BASE64", "FRAMED", "UNFRAMED", "SCALED", "UNSCALED", "RAW",
                     "NO_HEADER", "NO_STATUS", "ONE_SHOT", "XML", "BARE", "DEFAULT"}
            if not line.endswith(b"\n") or not opts <= known:
                writer.write(f"ERR Invalid capture options {sorted(opts - known)}\n".encode())
                await writer.drain()
                return
            if "BARE" in opts:
                opts |= {"UNFRAMED", "UNSCALED", "NO_HEADER", "NO_STATUS", "ONE_SHOT"}
            fmt = next((f for f in ("FRAMED", "UNFRAMED", "BASE64") if f in opts), "ASCII")
            proc = next((p for p in ("RAW", "UNSCALED") if p in opts), "SCALED")
            if "NO_STATUS" not in opts:
                writer.write(b"OK\n")
                await writer.drain()
            self._subscribers.add(q)
            # the server ignores further input; a closed connection ends the session
            closed = asyncio.ensure_future(_wait_closed(reader))
            while True:
                get = asyncio.ensure_future(q.get())
                done, _ = await asyncio.wait({get, closed}, return_when=asyncio.FIRST_COMPLETED)
                if closed in done:
                    get.cancel()
                    break
                kind, payload = get.result()
                if kind == "start":
                    fields = payload
                    n_sent, overrun = 0, False
                    if "NO_HEADER" not in opts:
                        writer.write(self._header(fields, fmt, proc, "XML" in opts).encode())
                elif kind == "rows" and not overrun:
                    writer.write(self._encode(fields, payload, fmt, proc))
                    n_sent += len(next(iter(payload.values()))) if payload else 0
                elif kind == "overrun":
                    overrun = True
                elif kind == "end":
                    _, reason = payload
                    if overrun:
                        reason = "Data overrun"
                    if "NO_STATUS" not in opts:
                        writer.write(f"END {n_sent} {reason}\n".encode())
                    await writer.drain()
                    if "ONE_SHOT" in opts:
                        break
                    continue
                await writer.drain()
            if not closed.done():
                closed.cancel()
        except (ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self._subscribers.discard(q)
            await self._close(writer)

    def _header(self, fields, fmt: str, proc: str, xml: bool) -> str:
        sample_bytes = 0
        meta = []
        for f, mode in fields:
            raw, scale, offset, units = self._field_meta(f)
            typ = raw if proc != "SCALED" or scale is None else "double"
            sample_bytes += np.dtype(typ).itemsize
            meta.append((f, typ, mode, scale, offset, units))
        process = {"SCALED": "Scaled", "UNSCALED": "Unscaled", "RAW": "Raw"}[proc]
        form = {"ASCII": "ASCII", "BASE64": "Base64", "FRAMED": "Framed",
                "UNFRAMED": "Unframed"}[fmt]
        if xml:
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
            if fmt != "ASCII":
                out.append(f"sample_bytes: {sample_bytes}")
            out.append("fields:")
            for f, typ, mode, scale, offset, units in meta:
                extra = ("" if scale is None
                         else f" scale: {scale!r} offset: {offset!r} units: {units}")
                out.append(f" {f} {typ} {mode}{extra}")
        return "\n".join(out) + "\n\n"

    def _encode(self, fields, cols: dict[str, np.ndarray], fmt: str, proc: str) -> bytes:
        n = len(next(iter(cols.values()))) if cols else 0
        if n == 0:
            return b""
        values = []
        dtypes = []
        for f, _ in fields:
            raw, scale, offset, _ = self._field_meta(f)
            v = cols[f]
            if proc == "SCALED" and scale is not None:
                values.append(v.astype(np.float64) * scale + offset)
                dtypes.append((f, "<f8"))
            else:
                values.append(v)
                dtypes.append((f, "<" + np.dtype(raw).str[1:]))
        if fmt == "ASCII":
            lines = []
            for i in range(n):
                lines.append(" " + " ".join(repr(float(c[i])) if c.dtype.kind == "f"
                                            else str(int(c[i])) for c in values))
            return ("\n".join(lines) + "\n").encode()
        rec = np.empty(n, dtype=dtypes)
        for (name, _), v in zip(dtypes, values):
            rec[name] = v
        body = rec.tobytes()
        if fmt == "FRAMED":
            return b"BIN " + struct.pack("<I", len(body) + 8) + body
        if fmt == "BASE64":
            return b"".join(b" " + base64.b64encode(body[k:k + 57]) + b"\n"
                            for k in range(0, len(body), 57))
        return body


def _in_group(key: str, dev: _Device, group: str) -> bool:
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


async def _wait_closed(reader: asyncio.StreamReader) -> None:
    """Return when the peer closes (the data port ignores whatever the client sends)."""
    try:
        while True:
            chunk = await reader.read(4096)
            if not chunk:
                return
    except (ConnectionError, OSError):
        return


def serve(capture: Capture | StreamedCapture, frame_rate_hz: float, exposure_s: float,
          host: str = "127.0.0.1", speed: float = 1.0, log=print) -> None:
    """Run the emulator in the foreground until interrupted (``twin panda``).

    Parameters
    ----------
    capture : Capture or StreamedCapture
        The rows (``twin panda``: :func:`twin.workflows.panda.streamed_capture`).
    frame_rate_hz, exposure_s : float
        The detector's frame rate and exposure (shown in ``PULSE1``).
    host : str
        Address to bind.
    speed : float
        Time compression (1: real time).
    log : callable
        Receives the status lines: what is served, where, and each acquisition's end.
    """
    server = PandaServer(capture, frame_rate_hz, exposure_s, speed=speed, host=host)
    log(f"twin panda: {capture.n_rows:,} rows (one per detector trigger) over "
        f"{capture.duration_s:.4g} s at speed ×{speed:g}, encoder "
        f"{capture.scale_m * 1e9:.3g} nm/count; control port {host}:{server.ports[0]}, data "
        f"port {host}:{server.ports[1]} (Ctrl-C stops)")
    try:
        asyncio.run(server.serve())
    except KeyboardInterrupt:
        pass
