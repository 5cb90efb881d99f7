"""I/O faults end in a clear error and a resumable file (issue #29): faults injected through the
writer's file layer at every stage (segment write, commit, merge, completion mark), a real full
file system where the machine allows one, and verify rejecting every damaged file made here."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

import lrenum
from lrenum.cli import main
from lrenum.datasets.storage import FaultyStorage, Storage
from lrenum.datasets.verify import Mismatch, verify_file
from lrenum.datasets.writer import RegionWriter
from nets import random_net
from reference import reference_patterns

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = lrenum.Settings(commit_seconds=0.0, verify_written=True)   # a segment after every split: many stages


@pytest.fixture(scope="module")
def net3():
    Ws, bs = random_net(np.random.default_rng(21), 3, [7, 6, 4])
    return Ws, bs, lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, 3)


def _patterns(path):
    with lrenum.open(path) as f:
        assert f.complete
        pats = f.final()["pattern"]
        found = {tuple(int(v) for v in p) for p in pats}
        assert len(found) == len(pats)                 # no region twice
        return found


def _stages(tmp_path, net, dom):
    """One clean run through a counting storage: the bytes written before each file was created."""
    probe = FaultyStorage()
    path = str(tmp_path / "probe.h5")
    RegionWriter.create(path, net, dom, settings=SETTINGS, storage=probe).run()
    seg = [b for name, b in probe.log if name.startswith("seg_")]
    merge = [b for name, b in probe.log if name == "probe.h5.tmp"][-1]
    return seg, merge, probe.written


def _fails_then_resumes(path, net, dom, Ws, bs, storage):
    """The run ends in WriteError; the file is incomplete and verify says so; a resume with the
    fault gone gives the reference regions and verifies."""
    with pytest.raises(lrenum.WriteError) as err:
        RegionWriter.create(path, net, dom, settings=SETTINGS, storage=storage).run()
    assert storage.faults >= 1
    message = str(err.value)
    assert message.startswith(f"writing {path}: ") and "--resume" in message and "\n" not in message
    with lrenum.open(path) as f:
        assert not f.complete
    with pytest.raises(Mismatch, match="incomplete"):
        verify_file(path, net, dom)
    RegionWriter.create(path, net, dom, resume=True, settings=SETTINGS, storage=Storage()).run()
    assert _patterns(path) == reference_patterns(Ws, bs, -1.0, 1.0)
    assert not os.path.exists(path + ".parts") and not os.path.exists(path + ".tmp")
    verify_file(path, net, dom)
    return message


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
@pytest.mark.parametrize("stage", ["first segment", "later segment", "merge"])
def test_a_write_fault_at_any_stage_leaves_a_resumable_file(tmp_path, net3, stage, code):
    Ws, bs, net, dom = net3
    seg, merge, total = _stages(tmp_path, net, dom)
    assert len(seg) >= 3
    budget = {"first segment": (seg[0] + seg[1]) // 2, "later segment": (seg[-2] + seg[-1]) // 2,
              "merge": (merge + total) // 2}[stage]
    message = _fails_then_resumes(str(tmp_path / "r.h5"), net, dom, Ws, bs, FaultyStorage(budget, code))
    assert os.strerror(code).lower() in message
    assert ("free space" in message) == (code == errno.ENOSPC)


@pytest.mark.parametrize("stage, rename, first", [("commit", "seg_", 1), ("completion mark", "r.h5", 1)])
def test_a_failed_rename_leaves_a_resumable_file(tmp_path, net3, stage, rename, first):
    """A segment's rename is its commit point; the final file's rename is its completion mark
    (the header's own rename, at creation, is let through)."""
    Ws, bs, net, dom = net3
    storage = FaultyStorage(fail_rename=rename, renames_first=first)
    message = _fails_then_resumes(str(tmp_path / "r.h5"), net, dom, Ws, bs, storage)
    assert "input/output error" in message


def test_no_room_for_the_header_fails_before_any_work(tmp_path, net3):
    _, _, net, dom = net3
    path = str(tmp_path / "r.h5")
    with pytest.raises(lrenum.WriteError, match="cannot create"):
        RegionWriter.create(path, net, dom, settings=SETTINGS, storage=FaultyStorage(100))
    assert not os.path.exists(path) and not os.path.exists(path + ".tmp")


def test_an_existing_file_is_kept_when_force_cannot_write(tmp_path, net3):
    """--force replaces an old file only by a complete new header: a fault keeps the old one."""
    _, _, net, dom = net3
    path = str(tmp_path / "r.h5")
    RegionWriter.create(path, net, dom, settings=SETTINGS).run()
    before = open(path, "rb").read()
    with pytest.raises(lrenum.WriteError):
        RegionWriter.create(path, net, dom, force=True, settings=SETTINGS, storage=FaultyStorage(100))
    assert open(path, "rb").read() == before


def test_bad_output_directories_are_one_line_before_any_work(tmp_path, capsys):
    net = os.path.join(ROOT, "examples", "net_2_16_16.npz")
    missing = str(tmp_path / "no" / "such" / "r.h5")
    assert main(["enumerate", net, "-o", missing, "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lrenum: error: output directory does not exist") and len(err.splitlines()) == 1
    plain = tmp_path / "a-file"
    plain.write_text("x")
    assert main(["enumerate", net, "-o", str(plain / "r.h5"), "-q"]) == 2
    assert "lrenum: error:" in capsys.readouterr().err


def _complete_file(tmp_path, Ws, bs, name="r.h5"):
    net_path = str(tmp_path / "net.npz")
    lrenum.save_npz(net_path, lrenum.make_network(Ws, bs))
    out = str(tmp_path / name)
    assert main(["enumerate", net_path, "-o", out, "-q"]) == 0
    return net_path, out


def _drop_last_row(f, layer):
    for name in f[f"layer_{layer}"]:
        ds = f[f"layer_{layer}/{name}"]
        ds.resize(ds.shape[0] - 1, axis=0)


DAMAGE = {
    "rows removed from the last layer": (lambda f: _drop_last_row(f, 3), "rows"),
    "rows removed from a middle layer": (lambda f: _drop_last_row(f, 2), "rows"),
    "per-layer counts altered": (lambda f: f.attrs.__setitem__("counts", f.attrs["counts"] + [0, 1, 0]), "counts"),
    "regions altered": (lambda f: f.attrs.__setitem__("regions", f.attrs["regions"] - 1), "regions"),
    "children altered": (lambda f: f["layer_1/n_children"].__setitem__(0, f["layer_1/n_children"][0] + 1),
                         "n_children"),
    "segments altered": (lambda f: f["segments"].__setitem__(0, f["segments"][0] + 1), "segments"),
    "root altered": (lambda f: f.attrs.__setitem__("root_children", 1 + f.attrs["root_children"]), "root"),
    "final table short": (lambda f: f["final/pattern"].resize(f["final/pattern"].shape[0] - 1, axis=0), "final"),
}


@pytest.mark.parametrize("what", sorted(DAMAGE))
def test_verify_rejects_a_file_whose_claims_do_not_hold(tmp_path, net3, capsys, what):
    Ws, bs, _, _ = net3
    net_path, out = _complete_file(tmp_path, Ws, bs)
    damage, word = DAMAGE[what]
    with h5py.File(out, "r+") as f:
        damage(f)
    capsys.readouterr()
    assert main(["verify", out, net_path, "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lrenum: verify failed:") and len(err.strip().splitlines()) == 1 and word in err, err


def test_verify_rejects_a_complete_file_without_regions(tmp_path, net3, capsys):
    """The file a full disk used to leave: marked complete, every table empty."""
    Ws, bs, net, dom = net3
    net_path = str(tmp_path / "net.npz")
    lrenum.save_npz(net_path, net)
    out = str(tmp_path / "empty.h5")
    w = RegionWriter.create(out, net, dom, settings=SETTINGS)
    with h5py.File(out, "r+") as f:          # what the old writer's header said after a failed merge
        f.attrs["complete"] = True
    capsys.readouterr()
    assert main(["verify", out, net_path, "-q"]) == 1
    assert "no region" in capsys.readouterr().err
    del w


def test_verify_rejects_segments_the_file_did_not_merge(tmp_path, net3, capsys):
    Ws, bs, _, _ = net3
    net_path, out = _complete_file(tmp_path, Ws, bs)
    other = str(tmp_path / "other.h5")
    # an interrupted run's committed segment beside a complete file: regions the file lacks
    w = RegionWriter.create(other, lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, 3), settings=SETTINGS)
    with pytest.raises(KeyboardInterrupt):
        lrenum.enumerate_regions(w.net, w.domain, SETTINGS, sink=_InterruptAfterFirstCommit(w))
    os.makedirs(out + ".parts")
    shutil.copy(os.path.join(other + ".parts", "seg_00000000.h5"), os.path.join(out + ".parts", "seg_00000007.h5"))
    capsys.readouterr()
    assert main(["verify", out, net_path, "-q"]) == 1
    assert "did not merge" in capsys.readouterr().err


def test_segments_of_the_files_own_merge_are_reported_and_tidied(tmp_path, net3, capsys):
    """A run stopped between the final rename and removing its segments: the file is complete
    and verifies (the leftovers are its own merge's), and --resume tidies them."""
    Ws, bs, net, dom = net3
    net_path = str(tmp_path / "net.npz")
    lrenum.save_npz(net_path, net)
    out = str(tmp_path / "r.h5")
    w = RegionWriter.create(out, net, dom, settings=SETTINGS, storage=_KeepsParts())
    w.run()
    assert os.path.isdir(out + ".parts")
    capsys.readouterr()
    assert main(["verify", out, net_path, "-q", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["leftover_segments"] >= 1
    assert main(["enumerate", net_path, "-o", out, "-q", "--resume"]) == 2
    assert "already complete" in capsys.readouterr().err and not os.path.exists(out + ".parts")


class _KeepsParts(Storage):
    """A storage whose process 'stops' right after the final rename: segments are not removed."""

    def remove_tree(self, path: str) -> None:
        if not (path.endswith(".parts") and os.path.isdir(path) and os.listdir(path)):
            super().remove_tree(path)


class _InterruptAfterFirstCommit:
    def __init__(self, writer):
        self.writer = writer

    def regions(self, layer, batch):
        self.writer.regions(layer, batch)

    def root_split(self, is_open):
        self.writer.root_split(is_open)

    def split_done(self, layer, ident, n_children):
        self.writer.split_done(layer, ident, n_children)
        if self.writer.committed_regions or any(self.writer.committed):
            raise KeyboardInterrupt


def _mount_small_tmpfs(where: str, size: str) -> bool:
    """A tmpfs of ``size`` at ``where`` (needs root and a kernel that allows it here)."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        return False
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", where], capture_output=True)
    return res.returncode == 0


def test_a_real_full_file_system_ends_in_one_line_and_resumes(tmp_path):
    """End to end on a 2 MB tmpfs: the bundled 5-input example writes ~1.3 MB of segments and
    a ~1.7 MB final file, so the merge runs out of space. Skipped where no tmpfs can be mounted."""
    small = tmp_path / "small"
    small.mkdir()
    if not _mount_small_tmpfs(str(small), "2m"):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        net = os.path.join(ROOT, "examples", "net_5_12_6_6.npz")
        out = str(small / "r.h5")
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable, "-m", "lrenum", "enumerate", net, "-o", out, "-q", "--json"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 3, proc.stderr
        assert proc.stdout == "" and proc.stderr.startswith(f"lrenum: error: writing {out}: no space left on device")
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
        check = subprocess.run([sys.executable, "-m", "lrenum", "verify", out, net, "-q"], capture_output=True,
                               text=True, env=env)
        assert check.returncode == 1 and "incomplete" in check.stderr
        subprocess.run(["mount", "-o", "remount,size=16m", str(small)], check=True)
        done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["regions"] == 8632
        check = subprocess.run([sys.executable, "-m", "lrenum", "verify", out, net, "-q"], capture_output=True,
                               text=True, env=env)
        assert check.returncode == 0, check.stderr
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)
