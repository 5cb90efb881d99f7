"""lrenum: exact enumeration of the activation regions of ReLU networks.

>>> import lrenum
>>> net = lrenum.make_network([W1, W2], [b1, b2])
>>> res = lrenum.enumerate_regions(net, lrenum.box_domain(-1, 1, net.input_dim))
>>> res.regions
"""

from ._version import __version__
from .core.walk import EnumerationResult, LayerCallback, enumerate_regions
from .counting.local import LocalResult, local_regions
from .datasets.reader import RegionFile, open
from .errors import InputError, LrenumError, WorkerError, WriteError
from .settings import Settings
from .model.domain import Domain, box_domain, polytope_domain, unbounded_domain
from .model.network import Network, make_network
from .model.graph import residual_network
from .model.npz import load_npz, save_npz
from .model.files import load_network
from .model.onnx_import import from_onnx
from .model.torch_import import from_torch

__all__ = [
    "__version__", "Domain", "box_domain", "polytope_domain", "unbounded_domain",
    "EnumerationResult", "enumerate_regions", "local_regions", "LocalResult", "LayerCallback", "InputError", "LrenumError", "WriteError", "WorkerError", "Settings",
    "Network", "from_torch", "residual_network",
    "load_npz", "save_npz", "make_network", "open", "RegionFile", "from_onnx", "load_network",
]
