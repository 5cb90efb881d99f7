import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import pytest


@pytest.fixture(autouse=True)
def every_written_file_verifies(monkeypatch):
    """Issue #12: `lrenum verify` passes on every file lrenum writes in the test suite. Each
    complete file is re-checked by the independent verifier right after its final merge (tests
    that tamper with a file do so afterwards)."""
    from lrenum.datasets.verify import verify_file
    from lrenum.datasets.writer import RegionWriter

    merge = RegionWriter._merge

    def merge_then_verify(self):
        merge(self)
        self.f.close()
        try:
            verify_file(self.path, self.net, self.domain)
        finally:
            import h5py
            self.f = h5py.File(self.path, "r+")

    monkeypatch.setattr(RegionWriter, "_merge", merge_then_verify)
