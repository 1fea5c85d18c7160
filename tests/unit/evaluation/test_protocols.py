"""The paper and nbr protocols: seeded, sized as documented, filters applied, no target leaks."""

import pytest

from lens.cli.evaluate import PROTOCOL_NAMES
from lens.errors import ConfigError, DataError
from lens.evaluation.protocols import PROTOCOLS, Split, make_split, nbr_split, paper_split
from tests.unit.evaluation.helpers import make_funnels

# 40 customers: c00..c09 have one basket (never held out), the others 2..5.
FUNNELS = make_funnels(
    {
        f"c{n:02d}": [f"a{n % 3} b{(n + pos) % 5} x{n}" for pos in range(basket_count)]
        for n, basket_count in ((n, 1 if n < 10 else 2 + n % 4) for n in range(40))
    }
)


def assert_no_target_leaks(split: Split) -> None:
    for cases in (split.valid, split.test):
        for customer, case in cases.items():
            train_ids = [b.basket_id for b in split.train[customer]]
            assert case.target.basket_id not in train_ids
            assert train_ids == [b.basket_id for b in case.history]  # the history, nothing more
            assert case.history and case.history[-1].timestamp <= case.target.timestamp
    assert not set(split.valid) & set(split.test)


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_same_seed_same_split_other_seed_other_split(protocol):
    funnels = nbr_funnels() if protocol == "nbr" else FUNNELS
    first, again = make_split(funnels, protocol, seed=1), make_split(funnels, protocol, seed=1)
    assert first == again
    assert list(make_split(funnels, protocol, seed=2).test) != list(first.test)
    # Dict order of the input does not matter: customers are drawn in id order.
    reversed_input = dict(reversed(list(funnels.items())))
    assert list(make_split(reversed_input, protocol, seed=1).test) == list(first.test)


def test_paper_holds_out_last_baskets_of_30_percent_of_customers():
    split = paper_split(FUNNELS, seed=0)
    assert len(split.test) == 12 and len(split.valid) == 4  # 30% and 10% of 40 customers
    assert all(len(FUNNELS[c]) >= 2 for c in [*split.test, *split.valid])
    for customer, case in split.test.items():
        assert case.target == FUNNELS[customer][-1]
    # Everyone else keeps every basket in train.
    others = set(FUNNELS) - set(split.test) - set(split.valid)
    assert all(list(split.train[c]) == FUNNELS[c] for c in others)
    assert set(split.train) == set(FUNNELS)
    assert_no_target_leaks(split)


def test_paper_refuses_when_too_few_customers_have_two_baskets():
    with pytest.raises(DataError, match="have >= 2 baskets"):
        paper_split(make_funnels({f"c{n}": ["a"] for n in range(10)}))


def nbr_funnels() -> dict:
    """100 customers with 3..7 baskets of common items, plus the cases the filters must drop."""
    spec = {
        f"u{n:03d}": [f"a b{pos % 3} c{n % 4}" for pos in range(3 + n % 5)] for n in range(100)
    }
    spec["short"] = ["a", "b0"]  # 2 baskets: too few
    spec["long"] = ["a"] * 51  # 51 baskets: too many
    spec["rare-target"] = ["a", "b0", "rare"]  # target only holds a rare item: no target left
    spec["rare-middle"] = ["a", "rare", "b0 rare"]  # middle basket empties, target shrinks
    return make_funnels(spec)


def test_nbr_filters_customers_items_and_empty_baskets():
    split = nbr_split(nbr_funnels(), seed=0)
    everyone = set(split.train)
    assert "short" not in everyone and "long" not in everyone and "rare-target" not in everyone
    # "rare" appears in 1 history basket (rare-middle's; the other rare items sit in last
    # baskets), below 3: it goes everywhere, and rare-middle's middle basket with it.
    items = {item for f in split.train.values() for b in f for item in b.items}
    assert "rare" not in items
    cases = split.valid | split.test
    if "rare-middle" in cases:
        assert [b.items for b in cases["rare-middle"].history] == [("a",)]
        assert cases["rare-middle"].target.items == ("b0",)
    else:
        assert [b.items for b in split.train["rare-middle"]] == [("a",), ("b0",)]
    assert len(everyone) == 101  # 100 + rare-middle
    assert (len(everyone) - len(cases), len(split.valid), len(split.test)) == (72, 8, 21)
    assert_no_target_leaks(split)


def test_nbr_train_customers_keep_their_full_funnels():
    funnels = nbr_funnels()
    split = nbr_split(funnels, seed=0)
    for customer in set(split.train) - set(split.valid) - set(split.test) - {"rare-middle"}:
        assert list(split.train[customer]) == funnels[customer]


def test_unknown_names_are_config_errors():
    with pytest.raises(ConfigError, match="paper, nbr"):
        make_split(FUNNELS, "random")
    with pytest.raises(ConfigError, match="valid, test"):
        paper_split(FUNNELS).cases("train")


def test_the_cli_offers_every_protocol():
    assert PROTOCOL_NAMES == tuple(PROTOCOLS)


def test_summary_reports_sizes():
    summary = paper_split(FUNNELS, seed=0).summary()
    assert summary["test_customers"] == 12 and summary["train_customers"] == 40
    assert summary["test_mean_target_size"] == 3.0


def test_nbr_shares_are_exactly_72_8_20_of_1000_customers():
    split = nbr_split(make_funnels({f"u{n:04d}": ["a", "a", "a"] for n in range(1000)}))
    assert (len(split.train) - 280, len(split.valid), len(split.test)) == (720, 80, 200)
