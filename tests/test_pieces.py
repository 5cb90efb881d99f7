"""One parent's split built and handed on in pieces (the root's children are bounded by the
network, not by the batch): the same regions as one arrangement at once and as the reference,
a late failure finished on the LP path without duplicates, the walk holding one piece at a time,
and a run interrupted while the root was open resumed (one process on either path, or Ray) to
the uninterrupted result."""

from __future__ import annotations

import numpy as np
import pytest

import lrenum
from lrenum import runtime
from lrenum.certify.decide import DecisionStats
from lrenum.cli import main
from lrenum.core.frame import Frame
from lrenum.core.split import Splitter
from lrenum.core.tree import Tree
from lrenum.core.vertices import PiecesFailed, VertexSplitter
from lrenum.datasets.writer import RegionWriter
from nets import patterns_of, random_net
from reference import reference_patterns


class _Batches:
    """A sink recording the walk's deliveries: (layer, ids) of every batch and the split events."""

    def __init__(self):
        self.events = []

    def regions(self, layer, batch):
        self.events.append(("regions", layer, batch.ident.copy()))

    def split_done(self, layer, ident, n_children):
        self.events.append(("split", layer, ident.copy()))


@pytest.mark.parametrize("d, widths, seed", [(2, [9, 7], 0), (3, [10, 6, 5], 1), (4, [8, 8], 2), (3, [12], 3)])
def test_pieces_give_the_regions_of_one_arrangement(d, widths, seed):
    Ws, bs = random_net(np.random.default_rng(seed), d, widths)
    net, dom = lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, d)
    whole = lrenum.enumerate_regions(net, dom, lrenum.Settings(vertex_path=False), collect=True)
    seen = _Batches()
    res = lrenum.enumerate_regions(net, dom, lrenum.Settings(vertex_path=True, piece_cells=3), collect=True, sink=seen)
    first = [len(ids) for kind, layer, ids in seen.events if kind == "regions" and layer == 1]
    assert len(first) > 1 and max(first) <= 3               # the root really came in pieces
    assert res.regions == whole.regions == len(patterns_of(res))
    assert patterns_of(res) == patterns_of(whole) == reference_patterns(Ws, bs, -1.0, 1.0)


class _GivesUpLate(VertexSplitter):
    """The vertex path giving up on a parent after ``after`` pieces were handed on."""

    after = 3

    def split_in_pieces(self, *args, **kw):
        for n, cells in enumerate(super().split_in_pieces(*args, **kw)):
            if n == self.after:
                raise PiecesFailed()
            yield cells


def test_a_late_failure_is_finished_on_the_lp_path_without_duplicates():
    Ws, bs = random_net(np.random.default_rng(4), 3, [11, 6])
    net, dom = lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, 3)
    frame = Frame(net, dom, lrenum.Settings(vertex_path=True, piece_cells=4))
    stats = DecisionStats()
    splitter = Splitter(frame, runtime.select_device("cpu"), stats)
    splitter.vertex = _GivesUpLate(frame, stats)
    root = Tree(frame, splitter, []).root()
    chunks = list(splitter.split_chunks(root))
    assert len(chunks) > 3 and stats.lps > 0                # pieces, then the LP path finished the parent
    layer1 = np.concatenate([ch.bits for ch, _ in chunks])
    found = {tuple(int(v) for v in p) for p in layer1}
    assert len(found) == len(layer1)                        # no region twice
    assert found == reference_patterns(Ws[:1] + [np.ones((1, 11))], bs[:1] + [np.zeros(1)], -1.0, 1.0)


def test_the_walk_holds_one_piece_of_the_roots_children_at_a_time():
    """Each piece of the root's children is walked (every one of its regions split) before the
    next piece is handed on."""
    Ws, bs = random_net(np.random.default_rng(5), 2, [16, 6, 4])
    net, dom = lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, 2)
    seen = _Batches()
    res = lrenum.enumerate_regions(net, dom, lrenum.Settings(vertex_path=True, piece_cells=5), collect=True, sink=seen)
    given, split = set(), set()
    pieces = 0
    for kind, layer, ids in seen.events:
        if kind == "regions" and layer == 1:
            assert given <= split                           # every earlier piece is walked already
            assert len(ids) <= 5
            given |= set(ids.tolist())
            pieces += 1
        elif kind == "split" and layer == 1:
            split |= set(ids.tolist())
    assert res.per_layer[0] > 20 and pieces > 4             # many first-layer regions, in many pieces
    assert given == split == set(range(res.per_layer[0]))
    assert patterns_of(res) == reference_patterns(Ws, bs, -1.0, 1.0)


class _StopAfterCommits:
    """A sink in front of the writer that interrupts the run (as Ctrl-C would) once the writer
    has committed ``n`` segments, remembering whether the root was still open each time."""

    def __init__(self, writer, n):
        self.writer, self.n, self.open_at = writer, n, []

    def regions(self, layer, batch):
        self.writer.regions(layer, batch)

    def root_split(self, is_open):
        self.writer.root_split(is_open)

    def split_done(self, layer, ident, n_children):
        before = self.writer.committed
        self.writer.split_done(layer, ident, n_children)
        if self.writer.committed != before:
            self.open_at.append(self.writer.root_open)
            if len(self.open_at) == self.n:
                raise KeyboardInterrupt


def _interrupted_mid_root(tmp_path, Ws, bs, splitter="vertices"):
    """A one-process run stopped after a few commits while the root was still open (its
    children come in pieces on the vertex path, in assembly chunks on the LP path)."""
    path = str(tmp_path / "net.npz")
    net = lrenum.make_network(Ws, bs)
    lrenum.save_npz(path, net)
    out = str(tmp_path / "r.h5")
    dom = lrenum.box_domain(-1.0, 1.0, net.input_dim)
    settings = lrenum.Settings(vertex_path=splitter == "vertices", piece_cells=4, assemble_chunk=4, commit_seconds=0.0)
    writer = RegionWriter.create(out, net, dom, network_path=path, settings=settings)
    stop = _StopAfterCommits(writer, 4)
    with pytest.raises(KeyboardInterrupt):
        lrenum.enumerate_regions(net, dom, settings, sink=stop)
    assert stop.open_at[-1]                                 # the root was still open at the last commit
    with lrenum.open(out) as f:
        assert not f.complete
    return path, out


def _final_patterns(out):
    with lrenum.open(out) as f:
        assert f.complete
        pats = f.final()["pattern"]
        found = {tuple(int(v) for v in p) for p in pats}
        assert len(found) == len(pats) == f.regions          # no region twice
        return found


@pytest.mark.parametrize("splitter", ["vertices", "lp"])
def test_a_run_stopped_while_the_root_is_open_resumes_to_the_same_regions(tmp_path, splitter):
    Ws, bs = random_net(np.random.default_rng(6), 2, [14, 6, 3])
    path, out = _interrupted_mid_root(tmp_path, Ws, bs, splitter)
    assert main(["enumerate", path, "-o", out, "-q", "--resume", "--splitter", splitter]) == 0
    whole = lrenum.enumerate_regions(lrenum.make_network(Ws, bs), collect=True)
    assert _final_patterns(out) == {tuple(int(v) for v in p) for p in whole.patterns}
    assert main(["verify", out, path, "-q"]) == 0


def test_ray_resumes_a_one_process_run_stopped_while_the_root_is_open(tmp_path):
    pytest.importorskip("ray")
    Ws, bs = random_net(np.random.default_rng(7), 2, [14, 6, 3])
    path, out = _interrupted_mid_root(tmp_path, Ws, bs)
    assert main(["enumerate", path, "-o", out, "-q", "--resume", "--workers", "2", "--splitter", "vertices"]) == 0
    whole = lrenum.enumerate_regions(lrenum.make_network(Ws, bs), collect=True)
    assert _final_patterns(out) == {tuple(int(v) for v in p) for p in whole.patterns}
    assert main(["verify", out, path, "-q"]) == 0
