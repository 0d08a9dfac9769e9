"""The PandA emulator's transport: an asyncio TCP server on the control and data ports.

The protocol itself lives in :mod:`~twin.services.panda.control` (commands) and
:mod:`~twin.services.panda.data` (the capture stream); this module binds the ports, runs the
connections and the acquisition: each arming streams the input rows
(:class:`~twin.acquisition.pcap.PcapRows` or :class:`~twin.acquisition.pcap.StreamedPcapRows`)
at their trigger times divided by ``speed`` (1: real time).

Robustness: every connection is served on its own; a client that disconnects, sends an unknown
command or a malformed line gets ``ERR`` or is dropped, never the server; a data client that
stops reading is dropped from the acquisition after :data:`OVERRUN_ROWS` rows waiting (its
stream ends ``Data overrun`` if it ever reads again).
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np

from twin.acquisition.pcap import PcapRows, StreamedPcapRows
from twin.core.errors import TwinInputError
from twin.services.panda import data
from twin.services.panda.blocks import Device
from twin.services.panda.control import ControlProtocol, encode_reply, is_table_write

__all__ = ["CONTROL_PORT", "DATA_PORT", "OVERRUN_ROWS", "PandaServer", "serve"]

CONTROL_PORT = 8888
DATA_PORT = 8889
OVERRUN_ROWS = 1_000_000       # rows queued for one data client before it is dropped


class PandaServer:
    """The emulator: serve with :meth:`serve` (asyncio) or :meth:`start` (a thread).

    Parameters
    ----------
    rows : PcapRows or StreamedPcapRows
        The rows to stream on each arming.
    frame_rate_hz, exposure_s : float
        Shown as ``PULSE1.STEP`` (1/rate) and ``PULSE1.WIDTH``.
    speed : float
        Rows leave at trigger time / speed after arming (1: real time; > 0).
    host : str
        Address to bind (any loopback address, 127.0.0.x).
    control_port, data_port : int
    """

    def __init__(self, rows: PcapRows | StreamedPcapRows, frame_rate_hz: float,
                 exposure_s: float, speed: float = 1.0, host: str = "127.0.0.1",
                 control_port: int = CONTROL_PORT, data_port: int = DATA_PORT):
        if not (np.isfinite(speed) and speed > 0):
            raise TwinInputError("--speed", speed, "must be a positive factor (1 = real time)")
        self.dev = Device(rows, frame_rate_hz, exposure_s)
        self.protocol = ControlProtocol(self.dev, self)
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
        """Bind both ports and serve until :meth:`stop`.

        On stop, the running acquisition is cancelled, the listeners and client connections are
        closed, and connection handlers still running after 2 s are cancelled.

        Parameters
        ----------
        ready : threading.Event, optional
            Set once both ports are bound.

        Raises
        ------
        TwinInputError
            ``--host`` when either port cannot be bound (the message holds the OS error).
        """
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
        """Serve from a background thread; returns once the ports are bound.

        Parameters
        ----------
        timeout_s : float
            Seconds to wait for the ports to be bound (and, failing that, for the thread to end).

        Returns
        -------
        PandaServer
            This server, serving (so that ``with PandaServer(...).start()`` reads naturally).

        Raises
        ------
        TwinInputError
            Re-raised from :meth:`serve` when a port cannot be bound.
        RuntimeError
            When the server did not bind its ports within ``timeout_s``.
        """
        ready = threading.Event()
        self._error: BaseException | None = None

        def run():
            """Thread body: run :meth:`serve` in a new event loop; keep any exception for
            :meth:`start`."""
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

    # -- arming (what the control protocol asks for) ---------------------------------------

    def armed(self) -> bool:
        """Whether an acquisition is running."""
        return self._acq is not None and not self._acq.done()

    def arm(self) -> None:
        """Start an acquisition (on the server's event loop)."""
        self._acq = asyncio.get_running_loop().create_task(self._acquire())

    def disarm(self) -> None:
        """Stop the running acquisition, if any."""
        if self.armed():
            self._acq.cancel()

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
                if is_table_write(text):
                    # a table or multi-line write: consume to the empty line
                    while True:
                        more = await reader.readline()
                        if not more or not more.strip():
                            break
                    reply = self.protocol.table_write(text[:-1])
                else:
                    try:
                        reply = self.protocol.answer(text, seen)
                    except Exception as exc:  # noqa: BLE001 - never let a line kill the server
                        reply = f"ERR {type(exc).__name__}: {exc}"
                writer.write(encode_reply(reply))
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
                        rows = data.rows(dev, fields, t[b:k], counts[b:k])
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

    async def _data(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._conns.add(asyncio.current_task())
        self._writers.add(writer)
        q: asyncio.Queue = asyncio.Queue()
        try:
            line = await asyncio.wait_for(reader.readline(), 60)
            try:
                opts = data.parse_options(line)
            except data.BadOptions as exc:
                writer.write(f"{exc}\n".encode())
                await writer.drain()
                return
            if opts.status:
                writer.write(b"OK\n")
                await writer.drain()
            self._subscribers.add(q)
            await self._stream(reader, writer, q, opts)
        except (ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self._subscribers.discard(q)
            await self._close(writer)

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      q: asyncio.Queue, opts: data.DataOptions) -> None:
        """Send each acquisition's header, rows and end to one data client until it closes
        (or, ``ONE_SHOT``, after one acquisition)."""
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
                if opts.header:
                    writer.write(data.header(self.dev, fields, opts).encode())
            elif kind == "rows" and not overrun:
                writer.write(data.encode(self.dev, fields, payload, opts))
                n_sent += len(next(iter(payload.values()))) if payload else 0
            elif kind == "overrun":
                overrun = True
            elif kind == "end":
                _, reason = payload
                if overrun:
                    reason = "Data overrun"
                if opts.status:
                    writer.write(data.end_line(n_sent, reason))
                await writer.drain()
                if opts.one_shot:
                    break
                continue
            await writer.drain()
        if not closed.done():
            closed.cancel()


async def _wait_closed(reader: asyncio.StreamReader) -> None:
    """Return when the peer closes (the data port ignores whatever the client sends)."""
    try:
        while True:
            chunk = await reader.read(4096)
            if not chunk:
                return
    except (ConnectionError, OSError):
        return


def serve(rows: PcapRows | StreamedPcapRows, frame_rate_hz: float, exposure_s: float,
          host: str = "127.0.0.1", speed: float = 1.0, log=print) -> None:
    """Run the emulator in the foreground until interrupted (``twin panda``).

    Parameters
    ----------
    rows : PcapRows or StreamedPcapRows
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
    server = PandaServer(rows, frame_rate_hz, exposure_s, speed=speed, host=host)
    log(f"twin panda: {rows.n_rows:,} rows (one per detector trigger) over "
        f"{rows.duration_s:.4g} s at speed ×{speed:g}, encoder "
        f"{rows.scale_m * 1e9:.3g} nm/count; control port {host}:{server.ports[0]}, data "
        f"port {host}:{server.ports[1]} (Ctrl-C stops)")
    try:
        asyncio.run(server.serve())
    except KeyboardInterrupt:
        pass
