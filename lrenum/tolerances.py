"""Every numerical constant of lrenum, each with the reason for its value.

Two kinds live here. *Rounding-model* constants enter the certificates: a wrong value there
would break a guarantee, so each one is justified by the float64 error analysis. *Proposal*
constants only steer the float search (which cuts to try, when a solver may stop); a bad value
there costs time, never correctness, because every proposal is certified afterwards.

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


# ----------------------------------------------------------------------------- proposals (speed only)
CUT_TOL = 1e-9        # an LP margin above CUT_TOL * domain scale is proposed as "non-empty": far above float64 noise, far below any real region's size
DECIDE_TOL = 1e-6     # an LP lane stops once |t*| is known to exceed DECIDE_TOL * scale: the sign is then settled; nearer zero goes to the certification path
GEO_SAFETY = 0.999    # geometric cut test uses distance < GEO_SAFETY * radius, so that half-balls keep a little room inside the witness ball
POOL_MARGIN = 1e-9    # a pooled point counts for a side of a hyperplane only beyond POOL_MARGIN * scale * |normal|: points on the hyperplane prove nothing
VERTEX_BAND = 1e-9    # a vertex within VERTEX_BAND * (|G|_1 max_box |x| + |g|) of a hyperplane counts as on it (both sides): interpolated vertices err by ~1e-15 relative per layer, so this band only ever widens a proposal; every decision is certified after
VERTEX_RESOLVE = 1e-10  # a vertex whose certified radius (from interpolation) exceeds VERTEX_RESOLVE * (max|x| + 1) is solved afresh from its rows: radii compound along chains of crossings; speed only, the radius is certified either way
RADIUS_CAP = 2.0      # geometric splits cap a witness ball at (distance + RADIUS_CAP * scale): keeps half-ball witnesses inside an overestimated ball's region

# ----------------------------------------------------------------------------- interior-point kernels
LP_ITERS = 40         # IPM iterations per lane: Mehrotra needs 10-30 on these LPs; lanes still open then go to the certification path
IPM_STEP = 0.99       # fraction of the step to the boundary (standard choice: keeps iterates strictly interior)
IPM_GAP_TOL = 1e-10   # relative gap at which a float64 lane counts as converged (sqrt(eps) * 1e-2 ~ 1.5e-10)
IPM_REG = 2.220446049250313e-16  # relative regularisation of normal matrices (one ulp of the trace): keeps Cholesky defined as lanes converge; measured: 1e-13 already slowed convergence 3x

# ----------------------------------------------------------------------------- Clarabel (float64 re-decisions)
CLARABEL_TOL = 1e-12  # gap and feasibility tolerances: as tight as float64 allows, since these LPs are the doubtful ones
CLARABEL_MAX_ITER = 200

# ----------------------------------------------------------------------------- domains
BOX_MARGIN_REL = 1e-9   # a certified bounding box of a polytope is widened by this (relative) beyond its dual bounds: slack for the bound's rounding

# ----------------------------------------------------------------------------- verification (lrenum verify)
MAP_REL_TOL = 1e-9      # a stored affine map may differ from a rebuilt one by this (relative to the map's size): both are float64 products of the same weights
FORWARD_REL_TOL = 1e-8  # the map and a forward pass at a point may differ by this (relative): two float64 evaluation orders of one function

# ----------------------------------------------------------------------------- estimators and MILPs
MILP_MARGIN = 1e-5      # MIPBound's pre-activation margin (relative to each neuron's range): solutions keep this far from every boundary, far beyond solver tolerances
MILP_RELAX_TOL = 1e-6   # the relaxed MILP (upper bounds) admits this much violation, beyond the solver's feasibility tolerance
MILP_INT_TOL = 1e-6     # a MILP dual bound is rounded down to an integer only when within this of one (else it is rounded conservatively)
