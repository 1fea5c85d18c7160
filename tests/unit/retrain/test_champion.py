import pytest

from lens.errors import ConfigError
from lens.retrain import Champion, ModelCard, find_champion


def card(run_dir: str, version: int) -> ModelCard:
    return ModelCard(
        model_name="lens", outcome="published", reason="r", metric="recall@10", margin=0.0,
        version=version, parent_version=version - 1, run_dir=run_dir, champion_run_dir="/old",
        created_at="2026-01-01T00:00:00+00:00",
    )


def test_the_newest_version_names_its_run_through_its_card(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    card("/runs/two", 2).write(tmp_path / "2")
    assert find_champion(tmp_path) == Champion(tmp_path.joinpath("/runs/two"), 2)
    assert ModelCard.read(tmp_path / "2" / "model_card.json") == card("/runs/two", 2)


def test_a_version_without_a_card_needs_the_champion_flag(tmp_path):
    (tmp_path / "1").mkdir()
    with pytest.raises(ConfigError, match="--champion"):
        find_champion(tmp_path)
    assert find_champion(tmp_path, tmp_path / "run") == Champion(tmp_path / "run", 1)


def test_an_empty_base_needs_the_champion_flag(tmp_path):
    with pytest.raises(ConfigError, match="no model version yet"):
        find_champion(tmp_path / "lens")
    assert find_champion(tmp_path / "lens", tmp_path / "run").version is None
