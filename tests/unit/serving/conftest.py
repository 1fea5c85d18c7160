"""Toy SavedModel versions, exported once per session and copied into per-test repositories."""

import shutil
from pathlib import Path

import pytest

from tests.unit.serving.fixtures import save_toy_version


@pytest.fixture(scope="session")
def toy_store(tmp_path_factory) -> Path:
    """Versions 1, 2, 3 of the toy model (see fixtures.py), to copy from."""
    store = tmp_path_factory.mktemp("toy-store")
    for version in (1, 2, 3):
        save_toy_version(store, version)
    return store


@pytest.fixture
def make_repo(toy_store, tmp_path):
    """make_repo(1, 2) -> a base path holding copies of those versions."""

    def make(*versions: int, base: Path | None = None) -> Path:
        base = base or tmp_path / "toy"
        base.mkdir(parents=True, exist_ok=True)
        for version in versions:
            shutil.copytree(toy_store / str(version), base / f".tmp-{version}")
            (base / f".tmp-{version}").rename(base / str(version))
        return base

    return make
