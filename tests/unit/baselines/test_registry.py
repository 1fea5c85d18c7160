"""The BASELINES registry and the package's public surface."""

import lens.baselines
from lens.baselines import BASELINES, Recommender

NAMES = {"global-top", "personal-top", "personal-then-global", "tifu-knn", "xgboost"}


def test_registry_has_every_baseline():
    assert set(BASELINES) == NAMES


def test_each_factory_builds_a_recommender_of_that_name():
    for name, factory in BASELINES.items():
        model = factory()
        assert isinstance(model, Recommender)
        assert model.name == name


def test_exports_exist():
    for symbol in lens.baselines.__all__:
        assert hasattr(lens.baselines, symbol), symbol
