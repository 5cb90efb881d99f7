"""Region geometry: facets (irredundant H-representations), the adjacency graph of regions,
exact vertices and volumes (d <= 6), and Monte Carlo volumes for any d.

- :mod:`.facets`: facets and neighbours of every region, proven in exact rationals, and the
  ``geometry`` group of a file (:func:`add_geometry`).
- :mod:`.polyhedron`: exact vertex enumeration and volume of one polyhedron.
- :mod:`.volumes`: volumes read back from a file, or estimated by sampling.
"""

from .facets import VERTEX_MAX_DIM, add_geometry, exact_pattern, geometry_of, region_facets, region_vertices, shares_facet
from .polyhedron import ExactVertices, exact_vertices, exact_volume
from .volumes import monte_carlo_volumes, region_volumes

__all__ = ["VERTEX_MAX_DIM", "add_geometry", "exact_pattern", "geometry_of", "region_facets", "region_vertices",
           "shares_facet", "ExactVertices", "exact_vertices", "exact_volume", "monte_carlo_volumes",
           "region_volumes"]
