import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import pytest


@pytest.fixture(autouse=True)
def every_written_file_verifies(monkeypatch):
    """Issue #12: `lrenum verify` passes on every file lrenum writes in the test suite. Each
    complete file is re-checked by the independent verifier right after its final merge (tests
    that tamper with a file do so afterwards), through the setting ``verify_written``, turned on
    here through the settings' environment override (tests that build their own Settings pass
    it themselves)."""
    monkeypatch.setenv("LRENUM_SETTINGS", json.dumps({"verify_written": True}))
