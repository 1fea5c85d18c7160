"""Personal top-frequency: each customer gets back what they bought most often."""

from collections.abc import Sequence

from lens.baselines._support import basket_size, next_basket, ranking_length
from lens.baselines.recommender import NextBasket
from lens.data.basket import Basket, Funnels

__all__ = ["PersonalTop", "personal_ranking"]


def personal_ranking(baskets: Sequence[Basket]) -> tuple[list[str], list[int]]:
    """Every product of ``baskets``, most frequent first, with its frequency.

    Frequency is the number of baskets containing the product. Ties go to the product bought more
    recently (the later last basket), then to the one scanned earlier in that basket.
    """
    count: dict[str, int] = {}
    last: dict[str, tuple[int, int]] = {}  # item -> (basket position, -scan position)
    for pos, basket in enumerate(baskets):
        for scan, item in enumerate(basket.items):
            count[item] = count.get(item, 0) + 1
            last[item] = (pos, -scan)
    ranked = sorted(count, key=lambda item: (-count[item], -last[item][0], -last[item][1]))
    return ranked, [count[item] for item in ranked]


class PersonalTop:
    """Ranks the customer's own products by frequency (``personal_ranking``); nothing else.

    A customer with few distinct products gets a short ranking, and none without history.
    ``scores`` are the frequencies. ``basket`` is the top ``s`` products, ``s`` the customer's
    median history basket size rounded half up and clipped to 1..10 (so never more than they have).
    ``fit`` learns nothing: the model lives in the history.
    """

    name = "personal-top"

    def fit(self, train: Funnels) -> "PersonalTop":
        return self

    def predict(self, histories: Funnels, k: int) -> dict[str, NextBasket]:
        n = ranking_length(k)
        out = {}
        for customer, baskets in histories.items():
            items, counts = personal_ranking(baskets)
            size = basket_size([len(b.items) for b in baskets])
            out[customer] = next_basket(items[:n], counts[:n], size)
        return out
