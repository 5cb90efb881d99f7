"""The low-dimensional vertex path (issue #11): not implemented.

The room the split keeps for it: at small input dimension, signs at a parent's vertices could
decide its cuts without LPs. A certified version needs enclosures of every vertex and a proof that
no cell is missed; until it exists, :meth:`VertexSplitter.for_frame` returns None and every parent
takes the LP path. Asking for it explicitly is an error rather than a silent no-op.
"""

from __future__ import annotations

from ..errors import InputError


class VertexSplitter:
    @classmethod
    def for_frame(cls, frame, stats, enabled=None):
        if enabled:
            raise InputError("the vertex path (vertex_path=True) is not implemented yet; every parent takes the LP path")
        return None
