"""Region geometry: facets (irredundant H-representations), the adjacency graph of regions,
vertices and volumes (d <= 6: certified float64 or exact), and Monte Carlo volumes for any d.

- :mod:`.store`: the ``geometry`` group of a file (:func:`add_geometry`), in either mode.
- :mod:`.facets`: facets and neighbours of every region, proven in exact rationals.
- :mod:`.simple_polytopes`, :mod:`.collect`, :mod:`.sharing`: certified float64 geometry read
  off the enumeration's final vertex sets, gathered while it runs, stored once.
- :mod:`.exact_from_vertices`: exact vertices and volumes from those proven vertex sets.
- :mod:`.polyhedron`: exact vertex enumeration and volume of one polyhedron.
- :mod:`.volumes`: volumes read back from a file, or estimated by sampling.
"""

from .facets import VERTEX_MAX_DIM, exact_pattern, geometry_of, region_facets, region_vertices, shares_facet
from .store import add_geometry
from .polyhedron import ExactVertices, exact_vertices, exact_volume
from .volumes import monte_carlo_volumes, region_volumes

__all__ = ["VERTEX_MAX_DIM", "add_geometry", "exact_pattern", "geometry_of", "region_facets", "region_vertices",
           "shares_facet", "ExactVertices", "exact_vertices", "exact_volume", "monte_carlo_volumes",
           "region_volumes"]
