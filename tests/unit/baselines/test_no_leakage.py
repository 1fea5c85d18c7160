"""Every baseline answers from the fitted model and the history it is given, nothing else."""

import pytest

from lens.baselines import BASELINES, TifuKnn, TifuKnnSettings, XGBoostBaseline, XGBoostSettings

FACTORIES = {
    **BASELINES,
    "tifu-knn": lambda: TifuKnn(TifuKnnSettings(n_neighbors=3)),
    "xgboost": lambda: XGBoostBaseline(XGBoostSettings(n_estimators=10, max_depth=3)),
}

TRAIN = {
    f"t{c}": [["a", "b", f"x{c}"], ["b", "c"], ["a", "c", f"y{c}"], ["a", f"z{c % 3}"]]
    for c in range(12)
}
HISTORIES = {"q": [["a", "h1"], ["b", "h1", "h2"]], "r": [["c", "d"], ["c"]]}
SECRET = "secret"  # only in q's (unseen) target basket


@pytest.fixture(params=sorted(FACTORIES))
def fitted(request, funnels):
    return FACTORIES[request.param]().fit(funnels(TRAIN))


def test_answers_every_customer_without_the_target(fitted, funnels):
    answers = fitted.predict(funnels(HISTORIES), k=20)
    assert set(answers) == set(HISTORIES)
    for answer in answers.values():
        assert SECRET not in answer.items
        assert len(answer.items) == len(answer.scores)
        assert len(answer.basket) <= 10 and set(answer.basket) <= set(answer.items)
        assert list(answer.scores) == sorted(answer.scores, reverse=True)


def test_an_answer_depends_only_on_that_customers_history(fitted, funnels):
    alone = fitted.predict(funnels({"q": HISTORIES["q"]}), k=20)["q"]
    together = fitted.predict(funnels(HISTORIES), k=20)["q"]
    again = fitted.predict(funnels({"q": HISTORIES["q"]}), k=20)["q"]
    assert list(alone.items) == list(together.items) == list(again.items)
    assert list(alone.scores) == pytest.approx(list(together.scores))
    assert list(alone.basket) == list(together.basket)
