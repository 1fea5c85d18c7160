"""`lens retrain` end to end on a synthetic world, reading the history store like production."""

import json

import pytest

from lens import v1
from lens.cli.main import main
from lens.data.basket import Basket
from lens.data.loaders import load_funnels
from lens.data.synthetic import SynthConfig, generate, write
from lens.history import SessionStore
from lens.model.config import CONFIGS, TrainingConfig
from lens.model.training import train_lens
from lens.retrain import find_champion


def as_session(basket: Basket, index: int) -> v1.Session:
    """The v1.Session the funnel worker would publish for ``basket``."""
    session = v1.Session(
        customer_id=basket.customer_id, store_id=basket.store_id,
        transaction_id=basket.basket_id, session_index=index,
    )
    session.timestamp.FromDatetime(basket.timestamp)
    for item, quantity, amount in zip(basket.items, basket.quantities, basket.amounts, strict=True):
        session.items.add(product_id=item, quantity=quantity, amount=amount)
    return session


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    directory = tmp_path_factory.mktemp("world")
    write(generate(SynthConfig(customers=40, days=30, stores=2, seed=3)), directory)
    funnels = load_funnels(directory / "transactions.csv").funnels
    store = directory / "sessions.sqlite"
    with SessionStore(store) as history:
        history.append(as_session(b, i) for f in funnels.values() for i, b in enumerate(f, start=1))
    # The champion saw only the first three weeks; the retrain gets the whole month.
    early = {c: [b for b in f if b.timestamp.day < 26 and b.timestamp.month == 1] for c, f in funnels.items()}
    early = {c: f for c, f in early.items() if f}
    champion = directory / "champion"
    train_lens(early, CONFIGS["tiny"], TrainingConfig(epochs=1, compiled=False), champion)
    return directory, store, champion


def test_retrain_publishes_the_next_version_with_a_model_card(world, tmp_path, capsys):
    directory, store, champion = world
    base, out = tmp_path / "models" / "lens", tmp_path / "run"
    code = main([
        "retrain", "--store", str(store), "--champion", str(champion), "--base", str(base),
        "--since", "21", "--eval-days", "5", "--epochs", "1", "--eager", "--margin", "1",
        "--out", str(out),
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "published as version 1" in printed
    assert (base / "1" / "saved_model.pb").is_file()
    card = json.loads((base / "1" / "model_card.json").read_text())
    assert json.loads((out / "model_card.json").read_text()) == card
    assert (card["outcome"], card["version"], card["parent_version"]) == ("published", 1, None)
    assert card["data"]["source"] == f"history store {store}"
    assert card["data"]["holdout_customers"] > 0
    assert card["vocabulary"]["new_items"] > 0  # products first sold after the champion's data
    for side in ("challenger", "champion"):
        assert 0.0 <= card[side]["recall@10"] <= 1.0
    # The next retrain finds this version's run as its champion.
    assert find_champion(base).run_dir == out.resolve()
    assert find_champion(base).version == 1


def test_a_challenger_whose_training_diverges_is_rejected_with_a_card(world, tmp_path, capsys):
    directory, store, champion = world
    base, out = tmp_path / "models" / "lens", tmp_path / "run"
    code = main([
        "retrain", "--store", str(store), "--champion", str(champion), "--base", str(base),
        "--since", "21", "--eval-days", "5", "--epochs", "2", "--eager",
        "--learning-rate", "1e6", "--margin", "1", "--out", str(out),
    ])
    assert code == 0  # a scheduled job: the decision is the result, not a crash
    printed = capsys.readouterr().out
    assert "rejected: challenger training diverged in epoch 1" in printed
    assert "lower --learning-rate (now 1e+06)" in printed
    assert not base.exists()  # nothing published, even with a margin that lets anything through
    card = json.loads((out / "model_card.json").read_text())
    assert (card["outcome"], card["version"], card["challenger"]) == ("rejected", None, {})
    assert card["training"]["diverged"] and 0.0 <= card["champion"]["recall@10"] <= 1.0


def test_history_export_and_status_read_the_store(world, tmp_path, capsys):
    directory, store, _ = world
    assert main(["history", "status", "--store", str(store)]) == 0
    assert "40 customers" in capsys.readouterr().out
    out = tmp_path / "last7.csv"
    assert main(["history", "export", "--store", str(store), "--since", "7", "--out", str(out)]) == 0
    exported = load_funnels(out).funnels
    newest = max(b.timestamp for f in exported.values() for b in f)
    oldest = min(b.timestamp for f in exported.values() for b in f)
    assert (newest - oldest).days <= 7


def test_a_missing_store_is_a_clear_error(tmp_path, capsys):
    missing = str(tmp_path / "none.sqlite")
    assert main(["history", "export", "--store", missing, "--out", str(tmp_path / "x.csv")]) == 2
    assert "lens history sink" in capsys.readouterr().err
