"""TIFU-KNN: user vectors derived by hand, neighbours, the pool and the fallbacks."""

import numpy as np
import pytest

from lens.baselines import TifuKnn, TifuKnnSettings
from lens.baselines._support import ItemIndex, flatten
from lens.baselines.tifu_knn import user_vectors
from lens.errors import ConfigError


def vector_of(history, settings):
    """{item: value} of the TIFU user vector of one customer's history."""
    index = ItemIndex.of_funnels(history)
    row = user_vectors(flatten(history, index), settings).toarray()[0]
    items = index.ids(range(len(index)))
    return {item: row[col] for col, item in enumerate(items) if row[col]}


def loop_vector(baskets, g, r_b, r_g):
    """Straightforward loop form of the model in lens.baselines.tifu_knn's docstring."""
    n = len(baskets)
    weighted = [{item: r_b ** (n - 1 - i) for item in b} for i, b in enumerate(baskets)]
    if n < g:
        groups = [[w] for w in weighted]
    else:
        base, extra = divmod(n, g)
        sizes = [base] * (g - extra) + [base + 1] * extra
        groups, at = [], 0
        for size in sizes:
            groups.append(weighted[at : at + size])
            at += size
    out: dict[str, float] = {}
    for j, group in enumerate(groups):
        for w in group:
            for item, value in w.items():
                share = value * r_g ** (g - 1 - j) / len(group) / len(groups)
                out[item] = out.get(item, 0.0) + share
    return out


def test_two_basket_user_vector_by_hand(funnels):
    # n = 2 < g = 7: each basket is a group, G = 2, group decays 0.7**6 (older) and 0.7**5.
    # basket 1 {a, b}: 0.9**1 * 0.7**6 / 2 = 0.0529416...; basket 2 {b, c}: 0.7**5 / 2 = 0.084035
    history = funnels({"q": [["a", "b"], ["b", "c"]]})
    got = vector_of(history, TifuKnnSettings())
    older, newer = 0.9 * 0.7**6 / 2, 0.7**5 / 2
    assert got == pytest.approx({"a": older, "b": older + newer, "c": newer})


def test_grouped_user_vector_by_hand(funnels):
    # n = 5, g = 2: groups [x1, x2] and [x3, x4, x5] (the later group takes the extra basket).
    # r_b = r_g = 0.5: basket weights 1/16, 1/8, 1/4, 1/2, 1; group 0 decays 0.5, group 1 by 1;
    # group means divide by 2 and 3, and the sum by G = 2.
    history = funnels({"q": [["i1"], ["i2"], ["i3"], ["i4"], ["i5"]]})
    s = TifuKnnSettings(n_groups=2, within_decay=0.5, group_decay=0.5)
    got = vector_of(history, s)
    assert got == pytest.approx(
        {"i1": 1 / 128, "i2": 1 / 64, "i3": 1 / 24, "i4": 1 / 12, "i5": 1 / 6}
    )


@pytest.mark.parametrize("n", [1, 3, 6, 7, 8, 13, 14, 15, 20, 22])
def test_user_vector_matches_the_loop_form(funnels, n):
    rng = np.random.default_rng(n)
    baskets = [list(rng.choice(list("abcdefghij"), size=3, replace=False)) for _ in range(n)]
    got = vector_of(funnels({"q": baskets}), TifuKnnSettings())
    assert got == pytest.approx(loop_vector(baskets, 7, 0.9, 0.7))


# With g = 1 and no decay a user vector is the share of baskets holding each item.
FLAT = dict(n_groups=1, within_decay=1.0, group_decay=1.0)


def test_prediction_mixes_own_vector_and_nearest_neighbours(funnels):
    train = funnels({"p1": [["a"]], "p2": [["a", "b"]], "p3": [["c"]]})
    s = TifuKnnSettings(n_neighbors=2, alpha=0.5, pool_drops_last=False, **FLAT)
    model = TifuKnn(s).fit(train)
    # q = {a: 1}; distances: p1 0, p2 1, p3 sqrt(2) -> neighbours p1, p2, mean {a: 1, b: 0.5}
    # score a = 0.5 * 1 + 0.5 * 1 = 1; b = 0.5 * 0.5 = 0.25; c never (not a neighbour's item).
    answer = model.predict(funnels({"q": [["a"]]}), k=10)["q"]
    assert list(answer.items) == ["a", "b"]
    assert list(answer.scores) == pytest.approx([1.0, 0.25])
    assert list(answer.basket) == ["a"]  # q's median basket size is 1


def test_pool_leaves_each_training_funnels_last_basket_out_by_default(funnels):
    train = funnels({"p": [["a"], ["z"]]})
    history = funnels({"q": [["a"]]})
    dropped = TifuKnn(TifuKnnSettings(n_neighbors=1, alpha=0.5, **FLAT)).fit(train)
    assert list(dropped.predict(history, k=10)["q"].items) == ["a"]  # pool vector p = {a: 1}
    kept = TifuKnn(TifuKnnSettings(n_neighbors=1, alpha=0.5, pool_drops_last=False, **FLAT))
    answer = kept.fit(train).predict(history, k=10)["q"]  # p = {a: 0.5, z: 0.5}
    assert list(answer.items) == ["a", "z"]
    assert list(answer.scores) == pytest.approx([0.75, 0.25])


def test_a_customer_is_never_its_own_neighbour(funnels):
    train = funnels({"q": [["a"], ["a"]], "other": [["b"]]})
    s = TifuKnnSettings(n_neighbors=1, alpha=0.5, pool_drops_last=False, **FLAT)
    answer = TifuKnn(s).fit(train).predict(funnels({"q": [["a"]]}), k=10)["q"]
    # q's own pool row {a: 1} is at distance 0 but excluded: the neighbour is "other".
    assert list(answer.items) == ["a", "b"]
    assert list(answer.scores) == pytest.approx([0.5, 0.5])


def test_items_only_the_history_knows_are_ranked(funnels):
    model = TifuKnn(TifuKnnSettings(n_neighbors=1, **FLAT)).fit(funnels({"p": [["a"], ["a"]]}))
    answer = model.predict(funnels({"q": [["new"]]}), k=10)["q"]
    assert set(answer.items) == {"new", "a"}
    # and fitting state is untouched: a second customer does not see "new" from the first.
    assert "new" not in model.predict(funnels({"r": [["a"]]}), k=10)["r"].items


def test_empty_history_gets_the_pool_mean(funnels):
    train = funnels({"p1": [["a"]], "p2": [["a", "b"]]})
    s = TifuKnnSettings(n_neighbors=1, alpha=0.5, pool_drops_last=False, **FLAT)
    answer = TifuKnn(s).fit(train).predict({"q": []}, k=10)["q"]
    assert list(answer.items) == ["a", "b"]
    assert list(answer.scores) == pytest.approx([0.5, 0.25])  # 0.5 * mean{a: 1, b: 0.5}


def test_blocked_distances_equal_one_block(funnels):
    rng = np.random.default_rng(0)
    spec = {
        f"c{u}": [list(rng.choice(list("abcdefghijkl"), size=4, replace=False)) for _ in range(5)]
        for u in range(40)
    }
    train = funnels({c: b for c, b in spec.items() if int(c[1:]) < 30})
    history = funnels({c: b for c, b in spec.items() if int(c[1:]) >= 30})
    small = TifuKnn(TifuKnnSettings(n_neighbors=5, block_entries=31)).fit(train)
    big = TifuKnn(TifuKnnSettings(n_neighbors=5)).fit(train)
    a, b = small.predict(history, k=20), big.predict(history, k=20)
    for c in history:
        assert list(a[c].items) == list(b[c].items)
        assert list(a[c].scores) == pytest.approx(list(b[c].scores))


def test_invalid_settings_say_what_is_wrong():
    with pytest.raises(ConfigError, match="alpha"):
        TifuKnnSettings(alpha=1.5)
