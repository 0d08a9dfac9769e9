"""The data files: what the twin writes and reads, and what other codes exchange with it.

Modules, one per format or concern:

* :mod:`twin.io.datamodel` - the data model: :class:`PtychoData` (frames, positions, geometry)
  with its :class:`GroundTruth`, :class:`Projections`, and :func:`check_ptycho_data`, the
  checks every data set passes once, where it is read;
* :mod:`twin.io.cxi` - CXI data files (CONTRACTS §3): :class:`CXIWriter` (streamed),
  :func:`read_cxi` (frames in memory or, lazily, a :class:`FrameStack` of
  :mod:`twin.io.framestack`), and :func:`write_cxi_product`, a reconstruction Ptychodus opens;
* :mod:`twin.io.products` - reconstructions of any code read into one :class:`Product`;
  :func:`write_reconstruction`, twin's own (CONTRACTS §4);
* :mod:`twin.io.dataexchange` - tomography (CONTRACTS §5): :func:`read_dxchange`,
  :func:`write_dxchange`, :func:`write_volume`;
* :mod:`twin.io.nexus` and :mod:`twin.io.assemble` - measured data: DECTRIS NeXus frames and a
  PandA capture assembled into a CXI file (``twin assemble``);
* :mod:`twin.io.atomic` - every writer's temporary-and-rename (:func:`atomic_path`), so a
  failed command leaves no file under the requested name;
* :mod:`twin.io.hdf5` - opening an HDF5 file as bad input (:func:`open_h5`), the frames'
  compression filters.

Formats are registered by name in :data:`READERS` and :data:`WRITERS`.
"""

from twin.io.atomic import atomic_path, check_output_file, remove_stale_temporaries
from twin.io.cxi import CXIWriter, read_cxi, write_cxi_product
from twin.io.dataexchange import read_dxchange, write_dxchange, write_volume
from twin.io.datamodel import GroundTruth, Projections, PtychoData, check_ptycho_data
from twin.io.framestack import FrameStack
from twin.io.hdf5 import COMPRESSIONS, compression_options, open_h5
from twin.io.products import Product, read_product, write_reconstruction

READERS = {"cxi": read_cxi, "dxchange": read_dxchange}
WRITERS = {"reconstruction": write_reconstruction, "cxi_product": write_cxi_product,
           "dxchange": write_dxchange, "volume": write_volume}

__all__ = [
    "COMPRESSIONS", "CXIWriter", "FrameStack", "GroundTruth", "Product", "Projections",
    "PtychoData", "READERS", "WRITERS", "atomic_path", "check_output_file", "check_ptycho_data",
    "compression_options", "open_h5", "read_cxi", "read_dxchange", "read_product",
    "remove_stale_temporaries", "write_cxi_product", "write_dxchange", "write_reconstruction",
    "write_volume",
]
