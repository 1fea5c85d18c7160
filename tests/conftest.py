"""Shared test helpers: free ports for processes the integration tests start, and the
hypothesis profile of the property tests."""

import socket
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests are part of the normal suite: the same examples on every run (no flaky
# failures, no example database) and few enough to keep the suite fast.
settings.register_profile("lens", derandomize=True, database=None, max_examples=60, deadline=None)
settings.load_profile("lens")

# The project's shared folder (paper, Ta-Feng) sits beside the repository, in CI as here.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TA_FENG_ZIP = SHARED_DATA / "ta_feng.csv.zip"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def clean_lens_env(monkeypatch):
    """Tests of settings must not see the LENS_* variables of the shell that runs them."""
    import os

    for name in list(os.environ):
        if name.startswith("LENS_"):
            monkeypatch.delenv(name)
