"""A PandA box as a TCP server (``twin panda``): the PandABlocks protocol on a scan's rows.

The control port (8888) answers the ASCII command protocol of PandABlocks-server for the blocks
a fly-scan uses (:mod:`~twin.services.panda.blocks`, :mod:`~twin.services.panda.control`); the
data port (8889) streams, each time PCAP is armed, the header, one row per detector trigger and
``END n Ok`` (:mod:`~twin.services.panda.data`). :mod:`~twin.services.panda.server` is the
asyncio transport.

The input is explicit: the rows to stream, :class:`~twin.acquisition.pcap.PcapRows` (in
memory) or :class:`~twin.acquisition.pcap.StreamedPcapRows` (made block by block), each row the
trigger time and the x and y encoder counts whose scale (the encoder resolution, m per count)
and offset make the scaled value the CXI file's ``/entry_1/data_1/translation``.
:func:`twin.workflows.panda.streamed_capture` makes them for a scenario (the same seed and
positions as ``twin simulate``), :func:`twin.workflows.panda.rows_from_plan` from a simulation
plan.
"""

from twin.acquisition.pcap import PcapRows, StreamedPcapRows
from twin.services.panda.data import TICK_S
from twin.services.panda.server import (CONTROL_PORT, DATA_PORT, OVERRUN_ROWS, PandaServer,
                                        serve)

__all__ = ["CONTROL_PORT", "DATA_PORT", "OVERRUN_ROWS", "TICK_S", "PandaServer", "PcapRows",
           "StreamedPcapRows", "serve"]
