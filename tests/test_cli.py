"""The command line: JSON summary, and one-line errors with exit code 2 for bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import lrenum
from lrenum.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def save(tmp_path, name="net.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


def good_arrays(d=2):
    rng = np.random.default_rng(0)
    return dict(W1=rng.normal(size=(4, d)), b1=rng.normal(size=4), W2=rng.normal(size=(1, 4)), b2=np.zeros(1))


def run_main(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_json_summary_is_last_line(tmp_path, capsys):
    path = save(tmp_path, **good_arrays())
    code, out, err = run_main(["enumerate", path, "--json", "-q"], capsys)
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    for key in ("regions", "seconds", "per_layer", "certified", "device"):
        assert key in summary
    assert summary["regions"] == summary["per_layer"][-1] > 0


def test_box_option_and_file_box(tmp_path, capsys):
    arrays = good_arrays()
    path = save(tmp_path, **arrays)
    _, out_a, _ = run_main(["enumerate", path, "--json", "-q", "--box", "0", "1"], capsys)
    path2 = save(tmp_path, "net2.npz", lo=np.zeros(2), hi=np.ones(2), **arrays)
    _, out_b, _ = run_main(["enumerate", path2, "--json", "-q"], capsys)
    a = json.loads(out_a.splitlines()[-1])
    b = json.loads(out_b.splitlines()[-1])
    assert a["regions"] == b["regions"]


BAD = {
    "shape mismatch": dict(W1=np.ones((3, 2)), b1=np.ones(3), W2=np.ones((1, 4)), b2=np.ones(1)),
    "bias shape": dict(W1=np.ones((3, 2)), b1=np.ones(2), W2=np.ones((1, 3)), b2=np.ones(1)),
    "nan": dict(W1=np.array([[np.nan, 1.0]]), b1=np.ones(1), W2=np.ones((1, 1)), b2=np.ones(1)),
    "inf": dict(W1=np.ones((1, 2)), b1=np.array([np.inf]), W2=np.ones((1, 1)), b2=np.ones(1)),
    "no W1": dict(A=np.ones(2)),
    "inverted box": dict(W1=np.ones((1, 2)), b1=np.ones(1), W2=np.ones((1, 1)), b2=np.ones(1),
                         lo=np.array([0.0, 1.0]), hi=np.array([1.0, 0.0])),
    "only hidden layer": dict(W1=np.ones((1, 2)), b1=np.ones(1)),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_network_files(tmp_path, capsys, name):
    path = save(tmp_path, **BAD[name])
    code, out, err = run_main(["enumerate", path, "-q"], capsys)
    assert code == 2
    assert err.startswith("lrenum: error: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_missing_and_unreadable_files(tmp_path, capsys):
    code, _, err = run_main(["enumerate", str(tmp_path / "missing.npz")], capsys)
    assert code == 2 and "not found" in err
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip archive")
    code, _, err = run_main(["enumerate", str(junk)], capsys)
    assert code == 2 and "cannot read" in err and len(err.strip().splitlines()) == 1


def test_empty_box_on_command_line(tmp_path, capsys):
    path = save(tmp_path, **good_arrays())
    code, _, err = run_main(["enumerate", path, "--box", "1", "1"], capsys)
    assert code == 2 and "inverted" in err


def test_subprocess_exit_code_and_no_traceback(tmp_path):
    path = save(tmp_path, **BAD["nan"])
    proc = subprocess.run([sys.executable, "-m", "lrenum", "enumerate", path], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "NaN" in proc.stderr


def test_bundled_example_runs(capsys):
    code, out, _ = run_main(["enumerate", os.path.join(ROOT, "examples", "net_2_16_16.npz"), "--json", "-q"], capsys)
    assert code == 0
    s = json.loads(out.splitlines()[-1])
    net, _ = lrenum.load_npz(os.path.join(ROOT, "examples", "net_2_16_16.npz"))
    assert s["regions"] > 16


COUNT_COMMANDS = {
    "estimate": (["--probes", "16"], ("estimate", "ci_low", "ci_high", "lower_bound", "seconds")),
    "estimate-points": (["--method", "points", "--points", "5000"], ("estimate", "ci_low", "ci_high", "lower_bound")),
    "mipbound": (["--trials", "3", "--max-xors", "2", "-q"], ("lower_bound", "confidence", "xors", "seconds")),
    "bounds": ([], ("bounds",)),
}


@pytest.mark.parametrize("name", sorted(COUNT_COMMANDS))
def test_count_commands_json(tmp_path, capsys, name):
    path = save(tmp_path, **good_arrays())
    extra, keys = COUNT_COMMANDS[name]
    code, out, _ = run_main([name.split("-")[0], path, "--json"] + extra, capsys)
    assert code == 0
    s = json.loads(out.strip().splitlines()[-1])
    for key in keys:
        assert key in s
    exact = lrenum.enumerate_regions(*_net_and_box(path)).regions
    if name == "bounds":
        assert all(isinstance(v, int) and v >= exact for v in s["bounds"].values())
    else:
        assert s["lower_bound"] <= exact


def _net_and_box(path):
    net, _ = lrenum.load_npz(path)
    return net, lrenum.box_domain(-1, 1, net.input_dim)


@pytest.mark.parametrize("args,needle", [
    (["estimate", "{p}", "--confidence", "1.5"], "confidence"),
    (["estimate", "{p}", "--method", "points", "--domain", "unbounded"], "bounded domain"),
    (["estimate", "{p}", "--probes", "0"], "probes"),
    (["mipbound", "{p}", "--domain", "unbounded"], "bounded domain"),
    (["mipbound", "{p}", "--time-limit", "-1"], "time-limit"),
    (["bounds", "{bad}"], "error"),
    (["estimate", "{missing}"], "not found"),
])
def test_count_commands_bad_input(tmp_path, capsys, args, needle):
    good = save(tmp_path, **good_arrays())
    bad = save(tmp_path, "bad.npz", **BAD["nan"])
    args = [a.format(p=good, bad=bad, missing=str(tmp_path / "missing.npz")) for a in args]
    try:
        code = main(args)
    except SystemExit as exc:   # argparse rejects option values before main runs
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("lrenum: error: ") and len(err.strip().splitlines()) == 1 and needle in err, err


def test_network_too_wide_for_memory_is_one_line(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(0)
    n = 20_000
    path = save(tmp_path, W1=rng.normal(size=(n, 2)), b1=rng.normal(size=n), W2=rng.normal(size=(1, n)), b2=np.zeros(1))
    monkeypatch.setenv("LRENUM_SETTINGS", json.dumps({"memory_limit": 50 * 2 ** 20}))
    code, out, err = run_main(["enumerate", path], capsys)
    assert code == 2 and out == ""
    assert err.startswith("lrenum: error: ") and len(err.strip().splitlines()) == 1 and "memory" in err, err


def test_cells_outgrowing_memory_stop_with_one_line(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(1)
    n = 600     # 600 lines in the plane: ~180,000 cells in one parent
    path = save(tmp_path, W1=rng.normal(size=(n, 2)), b1=rng.normal(size=n) * 0.3, W2=rng.normal(size=(1, n)), b2=np.zeros(1))
    monkeypatch.setenv("LRENUM_SETTINGS", json.dumps({"memory_limit": 2 ** 19}))   # 512 KB: a few hundred cells
    code, out, err = run_main(["enumerate", path, "--batch-size", "1", "-q"], capsys)
    assert code == 2
    assert err.startswith("lrenum: error: ") and len(err.strip().splitlines()) == 1 and "cells" in err, err


def test_closed_pipe_is_quiet(tmp_path):
    """`lrenum inspect f.h5 | head -1`: no traceback when the reader goes away."""
    path = save(tmp_path, **good_arrays())
    out = str(tmp_path / "r.h5")
    assert main(["enumerate", path, "-o", out, "-q"]) == 0
    r, w = os.pipe()
    os.close(r)                      # the reader is gone before lrenum writes: every write fails
    proc = subprocess.run([sys.executable, "-m", "lrenum", "inspect", out], stdout=w, stderr=subprocess.PIPE, text=True)
    os.close(w)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
