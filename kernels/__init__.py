"""JAX device code for lrenum, installed as ``lrenum.kernels``.

Everything that runs on the accelerator lives here: hyperplane propagation
(:mod:`lrenum.kernels.propagate`), the batched interior-margin LP solvers (small d:
:mod:`lrenum.kernels.lp_dense`; the domain box as bounds, wide inputs: :mod:`lrenum.kernels.lp_box`;
their shared small solves and lane statuses: :mod:`lrenum.kernels.linalg`), and batched forward
passes for point sampling (:mod:`lrenum.kernels.forward`). The host side (batching,
certification, I/O) is in ``lrenum`` proper and treats these kernels as *proposers*: every
answer they give is certified in float64 on the host before it is trusted.
"""
