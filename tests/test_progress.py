"""Progress from inside one split: a run whose root split is long reports the hyperplanes added and
the cells so far while that split runs (on stderr; stdout stays the JSON object)."""

from __future__ import annotations

import numpy as np
import pytest

import lrenum
import lrenum.core.walk as walk
from lrenum.core.progress import Progress


class EveryStep(Progress):
    def __init__(self, n_layers, enabled=True, every=1.0):
        super().__init__(n_layers, enabled, every=0.0)


@pytest.mark.parametrize("vertex_path", [None, False])
def test_progress_inside_the_root_split(monkeypatch, capsys, vertex_path):
    rng = np.random.default_rng(0)
    n = 12
    net = lrenum.make_network([rng.normal(size=(n, 3)), rng.normal(size=(1, n))], [rng.normal(size=n) * 0.3, np.zeros(1)])
    monkeypatch.setattr(walk, "Progress", EveryStep)
    res = lrenum.enumerate_regions(net, settings=lrenum.Settings().replace(vertex_path=vertex_path), progress=True)
    err = capsys.readouterr().err
    inside = [line for line in err.splitlines() if "splitting layer 1" in line]
    # one line per hyperplane added to the root's arrangement, the last with all of them and
    # (in a one-layer network) as many cells as regions
    assert len(inside) >= n
    assert f"hyperplane {n}/{n}, {res.regions:,} cells" in inside[-1]
    assert inside[0].index("hyperplane 1/") > 0


def test_no_progress_lines_when_off(capsys):
    net = lrenum.make_network([np.eye(2), np.ones((1, 2))], [np.zeros(2), np.zeros(1)])
    lrenum.enumerate_regions(net, progress=False)
    assert capsys.readouterr().err == ""
