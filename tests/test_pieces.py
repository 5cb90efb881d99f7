"""One parent's split built and handed on in pieces (the root's children are bounded by the
network, not by the batch): the same regions as one arrangement at once and as the reference,
a late failure finished on the LP path without duplicates, the walk holding one piece at a time,
and a run interrupted while the root was open resumed (one process on either path, or Ray) to
the uninterrupted result."""

from __future__ import annotations

import numpy as np
import pytest

import lrenum
from lrenum.cli import main
from lrenum.core import split as split_module
from lrenum.core import vertices as vertex_module
from lrenum.core import walk as walk_module
from lrenum.datasets import writer as writer_module
from nets import patterns_of, random_net
from reference import reference_patterns


def _pieces_spy(monkeypatch, fail_after=None):
    """Counts the pieces split_in_pieces yields; with ``fail_after``, gives up after that many."""
    yielded = []
    original = vertex_module.VertexSplitter.split_in_pieces

    def spy(self, *args, **kw):
        for cells in original(self, *args, **kw):
            if fail_after is not None and len(yielded) == fail_after:
                raise vertex_module.PiecesFailed()
            yielded.append(len(cells.parent))
            yield cells

    monkeypatch.setattr(vertex_module.VertexSplitter, "split_in_pieces", spy)
    return yielded


@pytest.mark.parametrize("d, widths, seed", [(2, [9, 7], 0), (3, [10, 6, 5], 1), (4, [8, 8], 2), (3, [12], 3)])
def test_pieces_give_the_regions_of_one_arrangement(monkeypatch, d, widths, seed):
    Ws, bs = random_net(np.random.default_rng(seed), d, widths)
    net, dom = lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, d)
    whole = lrenum.enumerate_regions(net, dom, collect=True, vertex_path=False)
    monkeypatch.setattr(split_module, "PIECE_CELLS", 3)
    yielded = _pieces_spy(monkeypatch)
    res = lrenum.enumerate_regions(net, dom, collect=True, vertex_path=True)
    assert len(yielded) > 1 and max(yielded) <= 3          # the root really came in pieces
    assert res.regions == whole.regions == len(patterns_of(res))
    assert patterns_of(res) == patterns_of(whole) == reference_patterns(Ws, bs, -1.0, 1.0)


def test_a_late_failure_is_finished_on_the_lp_path_without_duplicates(monkeypatch):
    Ws, bs = random_net(np.random.default_rng(4), 3, [11, 6])
    net, dom = lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, 3)
    monkeypatch.setattr(split_module, "PIECE_CELLS", 4)
    yielded = _pieces_spy(monkeypatch, fail_after=3)
    res = lrenum.enumerate_regions(net, dom, collect=True, vertex_path=True)
    assert len(yielded) == 3
    assert res.regions == len(patterns_of(res))
    assert patterns_of(res) == reference_patterns(Ws, bs, -1.0, 1.0)


def test_the_walk_holds_one_piece_of_the_roots_children_at_a_time(monkeypatch):
    Ws, bs = random_net(np.random.default_rng(5), 2, [16, 6, 4])
    net, dom = lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, 2)
    monkeypatch.setattr(split_module, "PIECE_CELLS", 5)
    waiting = []
    original = walk_module._Stack.push

    def push(self, batch):
        original(self, batch)
        if batch.layer == 1:
            waiting.append(self.size)

    monkeypatch.setattr(walk_module._Stack, "push", push)
    res = lrenum.enumerate_regions(net, dom, collect=True, vertex_path=True)
    assert res.per_layer[0] > 20 and len(waiting) > 4       # many first-layer regions, in many pieces
    assert max(waiting) <= 5
    assert patterns_of(res) == reference_patterns(Ws, bs, -1.0, 1.0)


def _interrupted_mid_root(tmp_path, monkeypatch, Ws, bs, splitter="vertices"):
    """A one-process run stopped after a few commits while the root was still open (its
    children come in pieces on the vertex path, in assembly chunks on the LP path)."""
    path = str(tmp_path / "net.npz")
    lrenum.save_npz(path, lrenum.make_network(Ws, bs))
    out = str(tmp_path / "r.h5")
    monkeypatch.setattr(split_module, "PIECE_CELLS", 4)
    monkeypatch.setattr(split_module, "ASSEMBLE_CHUNK", 4)
    monkeypatch.setattr(writer_module, "COMMIT_SECONDS", 0.0)
    original = writer_module.RegionWriter.commit
    commits = []

    def commit(self, force=False):
        original(self, force)
        commits.append(self.root_open)
        if len(commits) == 4:
            raise KeyboardInterrupt
    monkeypatch.setattr(writer_module.RegionWriter, "commit", commit)
    assert main(["enumerate", path, "-o", out, "-q", "--splitter", splitter]) == 130
    monkeypatch.setattr(writer_module.RegionWriter, "commit", original)
    assert commits[-1]                                      # the root was still open at the last commit
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
def test_a_run_stopped_while_the_root_is_open_resumes_to_the_same_regions(tmp_path, monkeypatch, splitter):
    Ws, bs = random_net(np.random.default_rng(6), 2, [14, 6, 3])
    path, out = _interrupted_mid_root(tmp_path, monkeypatch, Ws, bs, splitter)
    assert main(["enumerate", path, "-o", out, "-q", "--resume", "--splitter", splitter]) == 0
    whole = lrenum.enumerate_regions(lrenum.make_network(Ws, bs), collect=True)
    assert _final_patterns(out) == {tuple(int(v) for v in p) for p in whole.patterns}
    assert main(["verify", out, path, "-q"]) == 0


def test_ray_resumes_a_one_process_run_stopped_while_the_root_is_open(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    Ws, bs = random_net(np.random.default_rng(7), 2, [14, 6, 3])
    path, out = _interrupted_mid_root(tmp_path, monkeypatch, Ws, bs)
    assert main(["enumerate", path, "-o", out, "-q", "--resume", "--workers", "2", "--splitter", "vertices"]) == 0
    whole = lrenum.enumerate_regions(lrenum.make_network(Ws, bs), collect=True)
    assert _final_patterns(out) == {tuple(int(v) for v in p) for p in whole.patterns}
    assert main(["verify", out, path, "-q"]) == 0
