"""The architecture in docs/architecture.md holds: layers import only downwards (import-linter
contract in pyproject.toml), and the device kernels import nothing of lrenum but the leaves."""

import ast
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEAVES = {"lrenum.tolerances", "lrenum.errors"}                      # what the kernels may import
SHARED_LEAVES = {"tolerances", "errors", "settings", "runtime", "_version"}   # what every layer may import


def test_layers_contract_kept():
    exe = shutil.which("lint-imports") or os.path.join(os.path.dirname(sys.executable), "lint-imports")
    if not os.path.exists(exe):      # a missing checker is a failure, never a pass
        pytest.fail("import-linter is not installed (pip install -e '.[test]'): the layers cannot be checked")
    res = subprocess.run([exe, "--config", os.path.join(ROOT, "pyproject.toml")], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "broken" in res.stdout and "0 broken" in res.stdout


def test_kernels_import_only_leaves():
    folder = os.path.join(ROOT, "kernels")
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(folder, name)).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lrenum"):
                assert node.module in LEAVES, f"kernels/{name} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("lrenum"), f"kernels/{name} imports {alias.name}"


def test_shared_leaves_import_only_leaves():
    """errors, tolerances, settings and runtime are imported by every layer, so they may import
    nothing of lrenum but each other."""
    for leaf in sorted(SHARED_LEAVES):
        tree = ast.parse(open(os.path.join(ROOT, "lrenum", f"{leaf}.py")).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                assert (node.module or "") in SHARED_LEAVES, f"lrenum/{leaf}.py imports .{node.module}"
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("lrenum"):
                assert node.module.split(".")[1] in SHARED_LEAVES, f"lrenum/{leaf}.py imports {node.module}"
