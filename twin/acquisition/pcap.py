"""What a PandA's position capture (PCAP) records for a scan: one row per detector trigger.

A row is the trigger (exposure start) time and the x and y encoder counts; ``counts · scale_m
+ offset_m`` is the position in metres. :class:`PcapRows` holds the rows in memory;
:class:`StreamedPcapRows` makes them block by block, for scans too big to hold. Either is the
whole input of the PandA emulator (:mod:`twin.services.panda`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

__all__ = ["PcapRows", "StreamedPcapRows"]


@dataclass(frozen=True)
class PcapRows:
    """The rows of one acquisition, in memory.

    Attributes
    ----------
    t_trigger_s : float (N,)
        Detector trigger (exposure start) times from the start of the scan, seconds.
    counts : int32 (N, 2)
        x, y encoder counts.
    scale_m : float
        Metres per count (the encoder resolution).
    offset_m : (2,) float
        x, y offsets, metres: scaled = counts · scale + offset.
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
        """Rows (detector triggers) in the acquisition."""
        return len(self.t_trigger_s)

    @property
    def duration_s(self) -> float:
        """Trigger time of the last row, seconds."""
        return float(self.t_trigger_s[-1]) if len(self.t_trigger_s) else 0.0

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(t_trigger_s, counts)`` blocks in order (here: one, the whole)."""
        yield self.t_trigger_s, self.counts


@dataclass(frozen=True)
class StreamedPcapRows:
    """Rows made block by block as they are streamed: a huge scan in bounded memory.

    Attributes
    ----------
    n_rows : int
        Rows in the whole acquisition.
    duration_s : float
        Trigger time of the last row, seconds.
    scale_m : float
        Metres per count.
    offset_m : (2,) float
        x, y offsets, metres: scaled = counts · scale + offset.
    make_blocks : callable
        ``make_blocks()`` yields ``(t_trigger_s, counts)`` blocks in order, afresh on each call
        (each arming streams the acquisition from its start).
    """

    n_rows: int
    duration_s: float
    scale_m: float
    offset_m: np.ndarray
    make_blocks: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]

    def __post_init__(self):
        object.__setattr__(self, "n_rows", int(self.n_rows))
        object.__setattr__(self, "duration_s", float(self.duration_s))
        object.__setattr__(self, "scale_m", float(self.scale_m))
        object.__setattr__(self, "offset_m", np.asarray(self.offset_m, float))

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(t_trigger_s, counts)`` blocks in order."""
        yield from self.make_blocks()
