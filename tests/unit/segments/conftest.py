"""A tiny trained LENS run on a tiny synthetic world, shared by the segments, report, CLI and
browser tests (``tiny_world`` / ``train_tiny_run`` are plain functions so those packages can
build their own session fixtures from them)."""

from pathlib import Path

import pytest


def tiny_world(directory: Path) -> dict[str, Path]:
    """transactions.csv, resupplies.csv and ground_truth.json of a 40-customer, 30-day world."""
    from lens.data.synthetic import SynthConfig, generate, write

    return write(generate(SynthConfig(customers=40, days=30, stores=2, seed=3)), directory)


def train_tiny_run(world: dict[str, Path], directory: Path) -> Path:
    """A `tiny` LENS run trained for two batches on the world's transactions, in ``directory``."""
    from lens.data.loaders import load_funnels
    from lens.model import CONFIGS, TrainingConfig, train_lens

    funnels = load_funnels(world["transactions"]).funnels
    # Two eager batches: the tests need a real run directory, not a good model.
    training = TrainingConfig(epochs=1, batch_size=64, max_steps_per_epoch=2, compiled=False)
    train_lens(funnels, CONFIGS["tiny"], training, directory)
    return directory


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> dict[str, Path]:
    return tiny_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="session")
def run_dir(world, tmp_path_factory) -> Path:
    return train_tiny_run(world, tmp_path_factory.mktemp("tiny-run"))


@pytest.fixture(scope="session")
def trained(run_dir):
    from lens.model import TrainedLens

    return TrainedLens.load(run_dir)


@pytest.fixture(scope="session")
def reader(trained):
    from lens.segments import FunnelReader

    return FunnelReader(trained)


@pytest.fixture(scope="session")
def funnels(world):
    from lens.data.loaders import load_funnels

    return load_funnels(world["transactions"]).funnels
