"""HDF5 region datasets: round trip, maps on/off, verify (good and tampered), bad files, kill and resume."""

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import lrenum
from lrenum.cli import main
from nets import random_net, tent_net

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_net(tmp_path, Ws, bs, name="net.npz", **extra):
    path = str(tmp_path / name)
    lrenum.save_npz(path, lrenum.make_network(Ws, bs), **extra)
    return path


def packed_set(bits):
    return {r.tobytes() for r in np.packbits(bits, axis=1)}


@pytest.fixture
def deep_net(tmp_path):
    rng = np.random.default_rng(11)
    Ws, bs = random_net(rng, 3, [6, 5, 4])
    return Ws, bs, write_net(tmp_path, Ws, bs)


def test_round_trip_matches_enumeration(tmp_path, deep_net, capsys):
    Ws, bs, path = deep_net
    out = str(tmp_path / "r.h5")
    assert main(["enumerate", path, "-o", out, "-q"]) == 0
    res = lrenum.enumerate_regions(lrenum.make_network(Ws, bs), collect=True)
    with lrenum.open(out) as f:
        assert f.complete and f.regions == res.regions and f.counts == res.per_layer
        fin = f.final()
        assert packed_set(fin["pattern"]) == packed_set(res.patterns)
        net = lrenum.make_network(Ws, bs)
        A, c = f.affine_map(3)
        x = fin["witness"][3]
        assert np.allclose(A @ x + c, net.forward(x[None])[0])
        chain = f.ancestors(3)
        assert len(chain) == 3
        l1 = f.layer(1)
        assert l1["n_children"].sum() == f.counts[1]
        assert sum(1 for _ in f) == f.regions
    assert main(["verify", out, path]) == 0
    assert main(["inspect", out, "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["regions"] == res.regions


@pytest.mark.parametrize("L,d", [(2, 2), (3, 1)])
def test_tent_map_file_verifies(tmp_path, L, d):
    Ws, bs = tent_net(L, d)
    path = write_net(tmp_path, Ws, bs, lo=np.zeros(d), hi=np.ones(d))
    out = str(tmp_path / "t.h5")
    assert main(["enumerate", path, "-o", out, "-q"]) == 0
    assert lrenum.open(out).regions == (2 ** L) ** d
    assert main(["verify", out, path]) == 0


def test_maps_none_rebuilds_the_same_maps(tmp_path, deep_net):
    Ws, bs, path = deep_net
    a, b = str(tmp_path / "a.h5"), str(tmp_path / "b.h5")
    assert main(["enumerate", path, "-o", a, "-q"]) == 0
    assert main(["enumerate", path, "-o", b, "-q", "--maps", "none"]) == 0
    net = lrenum.make_network(Ws, bs)
    with lrenum.open(a) as fa, lrenum.open(b) as fb:
        assert "A" not in fb.final()
        with pytest.raises(ValueError):
            fb.affine_map(0)
        for i in range(0, fa.regions, 7):
            Aa, ca = fa.affine_map(i)
            Ab, cb = fb.affine_map(i, net=net)
            assert np.allclose(Aa, Ab) and np.allclose(ca, cb)
    assert main(["verify", b, path]) == 0


TAMPER = {
    "witness": lambda f: f["layer_3/witness"].__setitem__(0, f["layer_3/witness"][0] + 0.5),
    "pattern": lambda f: f["layer_2/pattern"].__setitem__(1, f["layer_2/pattern"][1] ^ 1),
    "rank": lambda f: f["layer_1/rank"].__setitem__(0, f["layer_1/rank"][0] + 1),
    "radius": lambda f: f["layer_2/radius"].__setitem__(0, 10.0),
    "map": lambda f: f["final/A"].__setitem__(2, f["final/A"][2] * 1.01),
    "parent": lambda f: f["layer_3/parent"].__setitem__(0, (f["layer_3/parent"][0] + 1) % f["layer_2/parent"].shape[0]),
}


@pytest.mark.parametrize("what", sorted(TAMPER))
def test_verify_catches_tampering(tmp_path, deep_net, capsys, what):
    _, _, path = deep_net
    out = str(tmp_path / "r.h5")
    assert main(["enumerate", path, "-o", out, "-q"]) == 0
    with h5py.File(out, "r+") as f:
        TAMPER[what](f)
    capsys.readouterr()
    assert main(["verify", out, path, "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lrenum: verify failed:") and len(err.strip().splitlines()) == 1


def test_existing_complete_file_is_kept_without_force(tmp_path, deep_net, capsys):
    _, _, path = deep_net
    out = str(tmp_path / "r.h5")
    assert main(["enumerate", path, "-o", out, "-q"]) == 0
    before = open(out, "rb").read()
    assert main(["enumerate", path, "-o", out, "-q"]) == 2
    assert open(out, "rb").read() == before
    assert main(["enumerate", path, "-o", out, "-q", "--force"]) == 0
    assert lrenum.open(out).complete


def test_bad_region_files(tmp_path, deep_net, capsys):
    _, _, path = deep_net
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    other = str(tmp_path / "other.h5")
    with h5py.File(other, "w") as f:
        f["x"] = 1
    good = str(tmp_path / "good.h5")
    assert main(["enumerate", path, "-o", good, "-q"]) == 0
    newer = str(tmp_path / "newer.h5")
    with open(good, "rb") as src, open(newer, "wb") as dst:
        dst.write(src.read())
    with h5py.File(newer, "r+") as f:
        f.attrs["format_version"] = 99
    truncated = str(tmp_path / "trunc.h5")
    with open(good, "rb") as src, open(truncated, "wb") as dst:
        dst.write(src.read()[: os.path.getsize(good) // 2])
    for bad, words in ((str(junk), "HDF5"), (other, "not an lrenum"), (newer, "format version 99"),
                       (truncated, ""), (str(tmp_path / "none.h5"), "not found")):
        capsys.readouterr()
        code = main(["inspect", bad])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("lrenum: error:") and words in err and "Traceback" not in err
        with pytest.raises(lrenum.InputError):
            lrenum.open(bad)


def _segments(path):
    parts = path + ".parts"
    return len([n for n in os.listdir(parts) if n.endswith(".h5")]) if os.path.isdir(parts) else 0


def test_kill_and_resume_gives_the_uninterrupted_result(tmp_path):
    path = os.path.join(ROOT, "examples", "net_5_12_6_6.npz")
    net, _ = lrenum.load_npz(path)
    out = str(tmp_path / "k.h5")
    env = dict(os.environ, PYTHONUNBUFFERED="1", LRENUM_SETTINGS=json.dumps({"commit_seconds": 0, "verify_written": True}))
    proc = subprocess.Popen([sys.executable, "-m", "lrenum", "enumerate", path, "-o", out, "-q", "--batch-size", "8"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and _segments(out) < 3:
        time.sleep(0.02)
    time.sleep(0.137)   # commits happen after every batch here, so this lands anywhere, even mid-write
    assert proc.poll() is None, "the run finished before it could be killed; use a bigger network"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with lrenum.open(out) as f:
        assert not f.complete
        partial = f.regions
    assert main(["enumerate", path, "-o", out, "-q"]) == 2        # no silent overwrite
    assert main(["enumerate", path, "-o", out, "-q", "--resume"]) == 0
    full = lrenum.enumerate_regions(net, collect=True)
    with lrenum.open(out) as f:
        assert f.complete and f.regions == full.regions and f.counts == full.per_layer
        pats = f.final()["pattern"]
        assert len(packed_set(pats)) == len(pats) == full.regions
        assert packed_set(pats) == packed_set(full.patterns)
        assert partial < full.regions
    assert main(["verify", out, path]) == 0


def test_to_pandas_when_installed(tmp_path, deep_net):
    pd = pytest.importorskip("pandas")
    _, _, path = deep_net
    out = str(tmp_path / "r.h5")
    assert main(["enumerate", path, "-o", out, "-q"]) == 0
    with lrenum.open(out) as f:
        df = f.to_pandas(2)
        assert isinstance(df, pd.DataFrame) and len(df) == f.counts[1]
        assert set(df["n_children"]) and (df["n_children"] > 0).all()


@pytest.mark.parametrize("dtype, shape", [(np.float64, (3,)), (np.int64, ()), (np.uint8, (5,)), (np.int16, (2,))])
def test_merge_chunks_compressed_in_threads_read_back_as_written(tmp_path, dtype, shape):
    """The merge's own chunk compression (shuffle + deflate, written directly) must give a table
    any HDF5 reader decodes to the rows appended, in pieces that straddle chunk borders, with a
    padded last chunk; a table with another layout takes HDF5's own path and reads back the same."""
    from concurrent.futures import ThreadPoolExecutor

    from lrenum.datasets.chunks import ChunkedAppender

    rng = np.random.default_rng(0)
    pieces = [(rng.normal(size=(n,) + shape) * 1000).astype(dtype) for n in (1, 99, 0, 250, 37, 64, 3)]
    with h5py.File(tmp_path / "t.h5", "w") as f, ThreadPoolExecutor(2) as pool:
        direct = f.create_dataset("direct", (0,) + shape, dtype, maxshape=(None,) + shape, chunks=(64,) + shape,
                                  compression="gzip", compression_opts=4, shuffle=True)
        plain = f.create_dataset("plain", (0,) + shape, dtype, maxshape=(None,) + shape, chunks=(64,) + shape,
                                 compression="lzf")
        for ds in (direct, plain):
            app = ChunkedAppender(ds, pool, 2)
            assert (app.pool is not None) == (ds.name == "/direct")
            for p in pieces:
                app.append(p)
            app.close()
    with h5py.File(tmp_path / "t.h5", "r") as f:
        for name in ("direct", "plain"):
            np.testing.assert_array_equal(f[name][()], np.concatenate(pieces))
