"""lrenum: exact enumeration of the activation regions of ReLU networks.

>>> import lrenum
>>> net = lrenum.make_network([W1, W2], [b1, b2])
>>> res = lrenum.enumerate_regions(net, lrenum.box_domain(-1, 1, net.input_dim))
>>> res.regions
"""

from ._version import __version__
from .domain import Domain, box_domain, polytope_domain, unbounded_domain
from .enumerate import EnumerationResult, enumerate_regions
from .dataset import RegionFile, open
from .errors import InputError
from .network import Network, from_torch, load_npz, make_network, save_npz

__all__ = [
    "__version__", "Domain", "box_domain", "polytope_domain", "unbounded_domain",
    "EnumerationResult", "enumerate_regions", "InputError", "Network", "from_torch",
    "load_npz", "make_network", "save_npz", "open", "RegionFile",
]
