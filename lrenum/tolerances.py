"""The constants a guarantee rests on, each with the reason for its value.

*Rounding-model* constants enter the certificates: a wrong value there would break a guarantee,
so each one is justified by the float64 error analysis. The others set what a certified domain,
a verification or a MILP bound may rely on. Constants that only steer the float search (which
cuts to try, when a solver may stop) are knobs, not guarantees: they live in
:class:`lrenum.settings.Settings`, because a bad value there costs time, never correctness.

This module imports nothing from lrenum, so every layer (the device kernels included) may use it.
"""

from __future__ import annotations

import numpy as np

# ----------------------------------------------------------------------------- rounding model
U64 = float(np.finfo(np.float64).eps) / 2   # unit roundoff of float64 (round to nearest)
ETA = 2.0 ** -1022   # smallest normal: the absolute error a product can make when it underflows (Higham 2.1: subnormal results err by 2^-1074, but XLA on CPU flushes them to zero, so up to 2^-1022); relative bounds miss it
SAFETY = 1.0 + 1e-6                         # inflates computed error bounds: absorbs the rounding of the bound's own arithmetic (a few ulps) with a wide margin


def gamma(n: int) -> float:
    """Higham's gamma_n = n u / (1 - n u): relative error bound of an n-term float64 dot product.

    Inflated by SAFETY so that evaluating the bound in floating point cannot undercut it.
    """
    return SAFETY * n * U64 / (1.0 - n * U64)


# ----------------------------------------------------------------------------- domains
BOX_MARGIN_REL = 1e-9   # a certified bounding box of a polytope is widened by this (relative) beyond its dual bounds: slack for the bound's rounding

# ----------------------------------------------------------------------------- verification (lrenum verify)
MAP_REL_TOL = 1e-9      # a stored affine map may differ from a rebuilt one by this (relative to the map's size): both are float64 products of the same weights
FORWARD_REL_TOL = 1e-8  # the map and a forward pass at a point may differ by this (relative): two float64 evaluation orders of one function

# ----------------------------------------------------------------------------- estimators and MILPs
MILP_MARGIN = 1e-5      # MIPBound's pre-activation margin (relative to each neuron's range): solutions keep this far from every boundary, far beyond solver tolerances
MILP_RELAX_TOL = 1e-6   # the relaxed MILP (upper bounds) admits this much violation, beyond the solver's feasibility tolerance
MILP_INT_TOL = 1e-6     # a MILP dual bound is rounded down to an integer only when within this of one (else it is rounded conservatively)
