"""Sharded enumeration on a local Ray of 2 workers: the same regions as one process, a worker
killed mid-run, an interrupted driver resumed, clear errors without Ray or with a bad address."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import lrenum
from lrenum.cli import main
from lrenum.distributed import FaultHooks
from nets import random_net, tent_net
from reference import reference_patterns

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _save(tmp_path, Ws, bs, name="net.npz"):
    path = str(tmp_path / name)
    lrenum.save_npz(path, lrenum.make_network(Ws, bs))
    return path


def _patterns(path):
    with lrenum.open(path) as f:
        assert f.complete
        return {tuple(int(v) for v in p) for p in f.final()["pattern"]}


def test_sharded_equals_reference_and_verifies(tmp_path, capsys):
    rng = np.random.default_rng(11)
    Ws, bs = random_net(rng, 3, [5, 4, 3])
    net = _save(tmp_path, Ws, bs)
    out = str(tmp_path / "r.h5")
    assert main(["enumerate", net, "-o", out, "--workers", "2", "-q", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # the driver's proven vertex sets travel with the tasks: no LP, no dual certificate
    assert summary["lps"] == 0 and summary["vertex_duals"] == 0 and summary["vertex_decisions"] > 0
    assert _patterns(out) == reference_patterns(Ws, bs, -1.0, 1.0)
    assert main(["verify", out, net, "-q"]) == 0


def test_sharded_tent_map_closed_form_and_degenerate(tmp_path):
    Ws, bs = tent_net(3, 2)
    net = _save(tmp_path, Ws, bs, "tent.npz")
    out = str(tmp_path / "t.h5")
    assert main(["enumerate", net, "-o", out, "--workers", "2", "-q", "--box", "0", "1"]) == 0
    with lrenum.open(out) as f:
        assert f.regions == (2 ** 3) ** 2
    # duplicated neurons: the sharded run must not count a region twice
    rng = np.random.default_rng(2)
    W1 = rng.normal(size=(3, 2))
    Ws = [np.concatenate([W1, W1]), rng.normal(size=(4, 6)), np.ones((1, 4))]
    bs = [np.zeros(6), rng.normal(size=4) * 0.3, np.zeros(1)]
    net = _save(tmp_path, Ws, bs, "dup.npz")
    one = lrenum.enumerate_regions(lrenum.make_network(Ws, bs), collect=True)
    out = str(tmp_path / "d.h5")
    assert main(["enumerate", net, "-o", out, "--workers", "2", "-q"]) == 0
    assert _patterns(out) == {tuple(int(v) for v in p) for p in one.patterns}


def kill_once(marker: str):
    """A task-start hook: the first task to find ``marker`` missing creates it and kills its own
    worker process, as a crash would (Ray pickles the closure and runs it in the worker)."""
    def hook():
        if not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), 9)
    return hook


def stop_after(n: int):
    """A driver hook: interrupt the driver once ``n`` tasks are committed, as Ctrl-C would."""
    def hook(done: int):
        if done >= n:
            raise KeyboardInterrupt
    return hook


def test_killed_worker_is_retried_without_loss_or_duplicates(tmp_path):
    rng = np.random.default_rng(5)
    Ws, bs = random_net(rng, 3, [6, 5])
    net = _save(tmp_path, Ws, bs)
    marker = str(tmp_path / "killed-once")
    out = str(tmp_path / "r.h5")
    assert main(["enumerate", net, "-o", out, "--workers", "2", "-q"], hooks=FaultHooks(task_start=kill_once(marker))) == 0
    assert os.path.exists(marker)                     # a worker really died
    one = lrenum.enumerate_regions(lrenum.make_network(Ws, bs), collect=True)
    assert _patterns(out) == {tuple(int(v) for v in p) for p in one.patterns}
    with lrenum.open(out) as f:
        assert f.regions == one.regions               # no duplicates either


def test_interrupted_driver_resumes(tmp_path, capsys):
    rng = np.random.default_rng(6)
    Ws, bs = random_net(rng, 3, [6, 5, 3])
    net = _save(tmp_path, Ws, bs)
    out = str(tmp_path / "r.h5")
    assert main(["enumerate", net, "-o", out, "--workers", "2", "-q"], hooks=FaultHooks(task_committed=stop_after(2))) == 130
    with lrenum.open(out) as f:
        assert not f.complete
    assert main(["enumerate", net, "-o", out, "--workers", "2", "-q", "--resume"]) == 0
    one = lrenum.enumerate_regions(lrenum.make_network(Ws, bs), collect=True)
    assert _patterns(out) == {tuple(int(v) for v in p) for p in one.patterns}
    assert main(["verify", out, net, "-q"]) == 0


def test_errors_without_ray_or_with_a_bad_address(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(7)
    net = _save(tmp_path, *random_net(rng, 2, [3]))
    out = tmp_path / "r.h5"
    assert main(["enumerate", net, "-o", str(out), "--workers", "2", "--ray-address", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lrenum: error: cannot reach a Ray cluster") and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
    monkeypatch.setitem(sys.modules, "ray", None)     # as if Ray were not installed
    assert main(["enumerate", net, "-o", str(out), "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'lrenum[ray]'" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_tree_estimate_with_workers(tmp_path, capsys):
    import json
    rng = np.random.default_rng(8)
    Ws, bs = random_net(rng, 2, [6, 5])
    net = _save(tmp_path, Ws, bs)
    exact = lrenum.enumerate_regions(lrenum.make_network(Ws, bs)).regions
    assert main(["estimate", net, "--workers", "2", "--probes", "64", "--json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["workers"] == 2 and out["lower_bound"] <= exact
    assert out["ci_low"] <= out["estimate"] <= out["ci_high"] and 0.3 * exact < out["estimate"] < 3 * exact


def test_mipbound_with_workers_gives_the_one_process_bound(tmp_path, capsys):
    """The driver draws the XOR sets; the trials run as Ray tasks: the same levels and bound for a seed."""
    import json
    rng = np.random.default_rng(9)
    Ws, bs = random_net(rng, 2, [5, 4])
    net = _save(tmp_path, Ws, bs)
    exact = lrenum.enumerate_regions(lrenum.make_network(Ws, bs)).regions
    args = ["mipbound", net, "--trials", "3", "--seed", "4", "--backend", "highs", "--json", "-q"]
    assert main(args) == 0
    alone = json.loads(capsys.readouterr().out)
    assert main(args + ["--workers", "2"]) == 0
    sharded = json.loads(capsys.readouterr().out)
    assert sharded["workers"] == 2 and "workers" not in alone
    assert sharded["levels"] == alone["levels"] and sharded["lower_bound"] == alone["lower_bound"]
    assert 0 < sharded["verified_patterns"] == alone["verified_patterns"] <= exact
    assert main(["mipbound", net, "--ray-address", "127.0.0.1:1", "-q"]) == 2


def test_work_stealing_hands_frontiers_back_with_the_same_tree(tmp_path, capsys):
    """--task-seconds 0: every task stops after its first split and hands its frontier back to
    the driver, which reissues it as new tasks. Same regions, same per-layer counts, and a tree
    that verify accepts; an interruption between hand-backs resumes to the same result."""
    rng = np.random.default_rng(13)
    Ws, bs = random_net(rng, 3, [5, 4, 4, 3])
    net = _save(tmp_path, Ws, bs)
    out = str(tmp_path / "r.h5")
    assert main(["enumerate", net, "-o", out, "--workers", "2", "-q", "--json", "--task-seconds", "0",
                 "--batch-size", "4"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["tasks_handed_back"] > 0 and summary["tasks"] > 16
    one = lrenum.enumerate_regions(lrenum.make_network(Ws, bs), collect=True)
    assert summary["per_layer"] == one.per_layer
    assert _patterns(out) == reference_patterns(Ws, bs, -1.0, 1.0)
    assert main(["verify", out, net, "-q"]) == 0
    out2 = str(tmp_path / "r2.h5")
    assert main(["enumerate", net, "-o", out2, "--workers", "2", "-q", "--task-seconds", "0", "--batch-size", "4"],
                hooks=FaultHooks(task_committed=stop_after(12))) == 130
    assert main(["enumerate", net, "-o", out2, "--workers", "2", "-q", "--resume"]) == 0
    assert _patterns(out2) == _patterns(out)
    assert main(["verify", out2, net, "-q"]) == 0
    assert main(["enumerate", net, "--task-seconds", "1", "-q"]) == 2      # needs --workers


def test_a_run_that_starts_its_own_ray_gives_the_reference_set(tmp_path):
    """A fresh process: Ray's start beside the top split, its shutdown beside the merge."""
    rng = np.random.default_rng(5)
    Ws, bs = random_net(rng, 2, [6, 5])
    net = _save(tmp_path, Ws, bs)
    out = str(tmp_path / "r.h5")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
                                                     + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.run([sys.executable, "-m", "lrenum", "enumerate", net, "-o", out, "--workers", "2", "--json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["tasks"] >= 2 and summary["ray_start_seconds"] > 0
    assert 0 < summary["first_task_start_seconds"] <= summary["last_task_end_seconds"] <= summary["seconds"] + 1
    assert summary["tail_idle_seconds"] >= 0 and summary["merge_seconds"] >= 0
    assert not any("Traceback" in line or "os.fork()" in line for line in proc.stderr.splitlines()), proc.stderr
    assert _patterns(out) == reference_patterns(Ws, bs, -1.0, 1.0)


FORK_DURING_BLAS = """
import os, sys, threading
import numpy as np
from lrenum.distributed import fork_safe_blas

done = []
def products():
    a = np.random.default_rng(0).random((200, 200))
    for _ in range(400):
        a @ a                         # big enough for OpenBLAS to use its thread pool
    done.append(True)

with fork_safe_blas() as safe:
    assert safe
    worker = threading.Thread(target=products, daemon=True)
    worker.start()
    while worker.is_alive():          # forks as ray.init does, while the products run
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    worker.join()
print("finished" if done else "lost")
"""


def test_forks_beside_the_top_split_do_not_hang_blas(tmp_path):
    """The driver's top split runs BLAS in a thread while ray.init forks. Without the guard this
    script hangs at once (OpenBLAS's pool is shut down under a call in flight: checked by hand,
    3 of 3 runs; a Ray run hung so once); a 2-thread pool is forced so that it can fail anywhere."""
    script = tmp_path / "fork_blas.py"
    script.write_text(FORK_DURING_BLAS)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "finished", proc.stderr[-2000:]


KILLED_WORKER_RUN = """
import os, sys
from lrenum.cli import main
from lrenum.distributed import FaultHooks

marker = sys.argv[1]

def kill_once():
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), 9)

sys.exit(main(sys.argv[2:], hooks=FaultHooks(task_start=kill_once)))
"""


def test_a_killed_worker_leaves_stdout_one_json_object(tmp_path):
    """Ray reports a dead worker on the driver's stdout; with --json, stdout must still be exactly
    one JSON object (Ray's lines go to stderr), with the right count."""
    rng = np.random.default_rng(8)
    Ws, bs = random_net(rng, 2, [6, 5])
    net = _save(tmp_path, Ws, bs)
    out = str(tmp_path / "r.h5")
    script = tmp_path / "killed.py"
    script.write_text(KILLED_WORKER_RUN)
    marker = str(tmp_path / "killed-once")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
                                                     + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.run([sys.executable, str(script), marker, "enumerate", net, "-o", out, "--workers", "2", "--json",
                           "-q"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert os.path.exists(marker)                     # a worker really died
    summary = json.loads(proc.stdout)                 # the whole of stdout: one object
    assert summary["regions"] == len(reference_patterns(Ws, bs, -1.0, 1.0)) == _patterns_count(out)


def _patterns_count(path):
    return len(_patterns(path))
