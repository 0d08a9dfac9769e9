"""The control port's protocol (PandABlocks-server's ASCII commands), without sockets.

One line in, one reply out: a single line (``OK``, ``OK =value``, ``ERR …``) or a list of
lines (sent as ``!line`` each and a closing ``.``). System commands: ``*IDN?``, ``*BLOCKS?``,
``*DESC.…?``, ``*ENUMS.…?``, ``*CHANGES[.GROUP]?``, ``*PCAP.ARM=``, ``*PCAP.DISARM=``,
``*PCAP.CAPTURED?``, ``*PCAP.STATUS?``; field gets and sets (``INENC1.VAL.CAPTURE=Value``,
``PULSE1.WIDTH?``, ``BLOCK.*?``); tables (``NAME<`` … empty line) accepted and ignored.
Anything else is answered ``ERR …``.

Commands are looked up in a table: exact commands first, then patterns in order.
"""

from __future__ import annotations

import math
from typing import Callable, Protocol, Union

from twin.services.panda.blocks import (BIT_LABELS, DESCS, ENUMS, EXT_CAPTURE, FIELDS, NUMBERS,
                                        POS_CAPTURE, TIME_UNITS, Device, canonical, in_group)

__all__ = ["SOFTWARE", "Arming", "ControlProtocol", "encode_reply", "is_table_write"]

SOFTWARE = "PandA SW: 3.0-twin FPGA: 0.0.0 00000000 00000000 rootfs: twin-emulator"
_CHANGE_GROUPS = ("", "CONFIG", "BITS", "POSN", "READ", "ATTR", "TABLE", "METADATA")

Reply = Union[str, list[str]]
Seen = dict[str, int]


class Arming(Protocol):
    """What the protocol asks of the acquisition (the transport runs it)."""

    def armed(self) -> bool:
        """Whether an acquisition is running."""

    def arm(self) -> None:
        """Start an acquisition."""

    def disarm(self) -> None:
        """Stop the running acquisition, if any."""


def is_table_write(text: str) -> bool:
    """Whether ``text`` opens a table (multi-line) write, which runs to an empty line.

    Parameters
    ----------
    text : str
        One command line without its line end.

    Returns
    -------
    bool
        True when ``text`` ends with ``<`` and holds neither ``?`` nor ``=``.
    """
    return text.endswith("<") and "?" not in text and "=" not in text


def encode_reply(reply: Reply) -> bytes:
    r"""A reply as sent: one line, or ``!line`` per line and a closing ``.``.

    Parameters
    ----------
    reply : str or list of str
        One reply line, or the lines of a multi-line reply.

    Returns
    -------
    bytes
        UTF-8 text with ``\n`` line ends.
    """
    if isinstance(reply, list):
        return ("".join(f"!{r}\n" for r in reply) + ".\n").encode()
    return (reply + "\n").encode()


class ControlProtocol:
    """Answers control-port lines against a :class:`Device`.

    Parameters
    ----------
    device : Device
        The blocks' state, shared by all connections.
    arming : Arming
        Starts and stops acquisitions.
    """

    def __init__(self, device: Device, arming: Arming):
        self.dev = device
        self.arming = arming
        self._exact: dict[str, Callable[[str, Seen], Reply]] = {
            "*IDN?": lambda text, seen: "OK =" + SOFTWARE,
            "*BLOCKS?": lambda text, seen: [f"{b} {n}" for b, n in NUMBERS.items()],
            "*PCAP.ARM=": self._arm,
            "*PCAP.DISARM=": self._disarm,
            "*PCAP.CAPTURED?": lambda text, seen: [f"{f} {m}"
                                                   for f, m in self.dev.captured_fields()],
            "*PCAP.STATUS?": lambda text, seen: "OK =" + ("Busy" if self.arming.armed()
                                                          else "Idle"),
        }
        self._patterns: list[tuple[Callable[[str], bool], Callable[[str, Seen], Reply]]] = [
            (lambda t: t.startswith("*CHANGES") and t.endswith("?"), self._changes),
            (lambda t: t.startswith("*DESC.") and t.endswith("?"), self._desc),
            (lambda t: t.startswith("*ENUMS.") and t.endswith("?"),
             lambda text, seen: self._enums(text[7:-1])),
            (lambda t: t.startswith("*"), lambda text, seen: "ERR Unknown command"),
            (lambda t: t.endswith(".*?"), self._block_fields),
            (lambda t: t.endswith("?"), self._get),
            (lambda t: "=" in t, self._put),
        ]

    def answer(self, text: str, seen: Seen) -> Reply:
        """The reply to one command line.

        Parameters
        ----------
        text : str
            The line, without its line end.
        seen : dict
            This connection's ``*CHANGES`` marks (group → sequence number), updated.

        Returns
        -------
        str or list of str
            One reply line, or the lines of a multi-line reply.
        """
        if not text.strip():
            return "ERR Empty command"
        handler = self._exact.get(text)
        if handler is not None:
            return handler(text, seen)
        for matches, handler in self._patterns:
            if matches(text):
                return handler(text, seen)
        return "ERR Unknown command"

    def table_write(self, name: str) -> str:
        """The reply to a table write ``name<`` (accepted and ignored).

        Parameters
        ----------
        name : str
            The opening line (``BLOCK.FIELD<``, optionally ``<B`` or ``<|``).

        Returns
        -------
        str
            ``"OK"`` for a known block, ``"ERR No such block"`` otherwise.
        """
        key = canonical(name.rstrip("<B|"))
        return "OK" if key is not None else "ERR No such block"

    # -- handlers ---------------------------------------------------------------------------

    def _arm(self, text: str, seen: Seen) -> Reply:
        if self.arming.armed():
            return "ERR Data capture already armed"
        self.arming.arm()
        return "OK"

    def _disarm(self, text: str, seen: Seen) -> Reply:
        self.arming.disarm()
        return "OK"

    def _changes(self, text: str, seen: Seen) -> Reply:
        dev = self.dev
        group = text[len("*CHANGES"):-1].lstrip(".")
        if group not in _CHANGE_GROUPS:
            return "ERR Unknown changes group"
        out = [f"{key}={dev.values[key]}" for key, seq in dev.changed.items()
               if seq > seen.get(group, 0) and in_group(key, dev, group)]
        seen[group] = dev.seq
        return out

    def _desc(self, text: str, seen: Seen) -> Reply:
        name = text[6:-1]
        block = name.split(".")[0].rstrip("0123456789")
        if "." not in name:
            return ("OK =" + DESCS[block]) if block in DESCS else "ERR No such block"
        key = canonical(name)
        if key is None or key.split(".", 2)[0] + "." + key.split(".")[1] not in self.dev.types:
            return "OK =" if key is not None and "[]" in name else "ERR No such field"
        return "OK =" + self.dev.types[".".join(key.split(".")[:2])][2]

    def _enums(self, name: str) -> Reply:
        parts = name.split(".")
        base = parts[0].rstrip("0123456789")
        if base not in FIELDS or len(parts) < 2:
            return "ERR No such field"
        field = parts[1]
        spec = next((f for f in FIELDS[base] if f[0] == field), None)
        if spec is None:
            return "ERR No such field"
        attr = parts[2] if len(parts) > 2 else None
        typ = spec[1]
        if attr == "CAPTURE":
            return EXT_CAPTURE if typ == "ext_out" else POS_CAPTURE
        if attr == "UNITS" and typ == "time":
            return TIME_UNITS
        if attr is None and typ == "bit_mux":
            return BIT_LABELS
        if attr is None and (base, field) in ENUMS:
            return ENUMS[(base, field)]
        return "ERR Field has no enumeration"

    def _block_fields(self, text: str, seen: Seen) -> Reply:
        base = text[:-3].rstrip("0123456789")
        if base not in FIELDS:
            return "ERR No such block"
        return [f"{name} {i} {typ}" + (f" {sub}" if sub else "")
                for i, (name, typ, sub, _, _) in enumerate(FIELDS[base])]

    def _get(self, text: str, seen: Seen) -> Reply:
        key = canonical(text[:-1])
        if key is None or key not in self.dev.values:
            return "ERR No such field"
        return "OK =" + self.dev.values[key]

    def _put(self, text: str, seen: Seen) -> Reply:
        name, _, value = text.partition("=")
        key = canonical(name)
        if key is None or key not in self.dev.values:
            return "ERR No such field"
        field = ".".join(key.split(".")[:2])
        typ = self.dev.types[field][0]
        if key == field and typ in ("bit_out", "pos_out", "ext_out", "read"):
            return "ERR Field is read only"
        if key.endswith(".CAPTURE"):
            if value not in (EXT_CAPTURE if typ == "ext_out" else POS_CAPTURE):
                return "ERR Invalid enumeration value"
            if value not in ("No", "Value"):
                return "ERR the twin's PandA captures Value only"
            if self.arming.armed():
                return "ERR Cannot change capture while armed"
        if key.endswith((".SCALE", ".OFFSET")):
            try:
                if not math.isfinite(float(value)):
                    raise ValueError
            except ValueError:
                return "ERR Number expected"
        self.dev.set(key, value)
        return "OK"
