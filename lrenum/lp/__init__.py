"""LP back ends behind one narrow door (:class:`lrenum.lp.problem.MarginBackend`): the batched
device kernels, Clarabel, exact rationals; and the polytope helpers built on them."""
