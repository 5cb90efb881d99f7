"""What is enumerated: the network (every supported model lowered to dense layers) and its domain."""

from .domain import Domain, box_domain, polytope_domain, resolve_domain, unbounded_domain
from .network import Network, make_network
from .npz import load_npz, save_npz

__all__ = ["Domain", "box_domain", "polytope_domain", "resolve_domain", "unbounded_domain", "Network",
           "make_network", "load_npz", "save_npz"]
