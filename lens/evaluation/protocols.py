"""Evaluation protocols: how funnels split into what a model may fit on and what it is judged on.

Both protocols are seeded (``numpy.random.default_rng(seed)`` over customers in id order), so a
(protocol, seed) pair always gives the same split. A target basket never reaches ``Split.train``.

``paper`` (LENS paper, IV.D): the last basket of a random 30% of all customers is held out as the
    test target (only customers with >= 2 baskets can be drawn). Validation is carved the same way
    from the remaining customers: the last basket of another random 10% of all customers. Train =
    every basket of every other customer + the histories (all but the last basket) of valid and
    test customers. Valid targets stay out of train for both splits, so one fitted model serves
    model selection on valid and the final test.
``nbr`` (Li et al. 2023, "A Next Basket Recommendation Reality Check"): keep customers with 3..50
    baskets; keep items seen in >= 3 history baskets (every basket but each customer's last);
    drop baskets left empty, and customers left without a target or without a history; shuffle
    customers 72/8/20 into train/valid/test. Target = each customer's last basket. Train = the full
    funnels of train customers + the histories of valid and test customers.
"""

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from lens.data.basket import Basket, Funnels
from lens.errors import ConfigError, DataError

__all__ = [
    "PROTOCOLS",
    "SPLIT_NAMES",
    "EvaluationCase",
    "Split",
    "make_split",
    "nbr_split",
    "paper_split",
]

log = logging.getLogger(__name__)

SplitName = Literal["valid", "test"]
SPLIT_NAMES: tuple[SplitName, ...] = ("valid", "test")


@dataclass(frozen=True, slots=True)
class EvaluationCase:
    """One customer to predict: ``history`` (chronological, non-empty) is what the model sees,
    ``target`` the basket that followed it."""

    customer_id: str
    history: tuple[Basket, ...]
    target: Basket


@dataclass(frozen=True)
class Split:
    """``train``: customer id -> baskets a model may fit on. ``valid``/``test``: customer id ->
    EvaluationCase, customers in id order."""

    protocol: str
    seed: int
    train: Mapping[str, tuple[Basket, ...]]
    valid: Mapping[str, EvaluationCase]
    test: Mapping[str, EvaluationCase]

    def cases(self, name: str) -> Mapping[str, EvaluationCase]:
        """The evaluation cases of split ``name`` ("valid" or "test")."""
        if name not in SPLIT_NAMES:
            raise ConfigError(f"unknown split {name!r}; use one of {', '.join(SPLIT_NAMES)}.")
        return self.valid if name == "valid" else self.test

    def summary(self) -> dict[str, Any]:
        """Sizes for logs and reports: customers, baskets, items, mean target basket size."""
        train_items = {item for f in self.train.values() for b in f for item in b.items}
        out: dict[str, Any] = {
            "protocol": self.protocol,
            "seed": self.seed,
            "train_customers": len(self.train),
            "train_baskets": sum(len(f) for f in self.train.values()),
            "train_items": len(train_items),
        }
        for name in SPLIT_NAMES:
            cases = self.cases(name)
            sizes = [len(case.target.items) for case in cases.values()]
            out[f"{name}_customers"] = len(cases)
            out[f"{name}_mean_target_size"] = float(np.mean(sizes)) if sizes else float("nan")
        return out


def paper_split(
    funnels: Funnels,
    *,
    seed: int = 0,
    test_fraction: float = 0.3,
    valid_fraction: float = 0.1,
) -> Split:
    """The LENS paper's protocol (see the module docstring). Fractions are of all customers.

    Raises DataError when fewer customers have >= 2 baskets than the fractions ask for.
    """
    customers = sorted(funnels)
    eligible = [c for c in customers if len(funnels[c]) >= 2 and funnels[c][-1].items]
    n_test = round(test_fraction * len(customers))
    n_valid = round(valid_fraction * len(customers))
    if n_test + n_valid > len(eligible):
        raise DataError(
            f"the paper protocol holds out {n_test} test + {n_valid} valid customers, but only "
            f"{len(eligible)} of {len(customers)} customers have >= 2 baskets. Use more data."
        )
    order = np.random.default_rng(seed).permutation(len(eligible))
    # One permutation for both: the test customers do not depend on valid_fraction.
    test = {eligible[i] for i in order[:n_test]}
    valid = {eligible[i] for i in order[n_test : n_test + n_valid]}
    held_out = test | valid
    train = {c: tuple(funnels[c][:-1] if c in held_out else funnels[c]) for c in customers}
    return _log_split(
        Split(
            protocol="paper",
            seed=seed,
            train=train,
            valid=_cases(funnels, sorted(valid)),
            test=_cases(funnels, sorted(test)),
        )
    )


def nbr_split(
    funnels: Funnels,
    *,
    seed: int = 0,
    min_baskets: int = 3,
    max_baskets: int = 50,
    min_item_count: int = 3,
    fractions: tuple[float, float, float] = (0.72, 0.08, 0.20),
) -> Split:
    """The reality-check protocol of Li et al. 2023 (see the module docstring)."""
    kept = {c: funnels[c] for c in sorted(funnels) if min_baskets <= len(funnels[c]) <= max_baskets}
    # Count each item once per history basket (every basket but the customer's last).
    counts = Counter(item for f in kept.values() for b in f[:-1] for item in b.items)
    items = {item for item, n in counts.items() if n >= min_item_count}
    filtered: dict[str, tuple[Basket, ...]] = {}
    for customer, funnel in kept.items():
        *history, target = (_keep_items(b, items) for b in funnel)
        history = [b for b in history if b.items]
        if target.items and history:
            filtered[customer] = (*history, target)
    customers = list(filtered)
    order = np.random.default_rng(seed).permutation(len(customers))
    shuffled = [customers[i] for i in order]
    # Cut points floor(n * 0.72) and floor(n * 0.8) as in the reality-check code; the epsilon
    # keeps 0.72 + 0.08 = 0.7999999999999999 from losing a customer.
    n_train, n_valid_end = np.floor(np.cumsum(fractions[:2]) * len(shuffled) + 1e-9).astype(int)
    train_customers, valid, test = (
        set(shuffled[:n_train]),
        sorted(shuffled[n_train:n_valid_end]),
        sorted(shuffled[n_valid_end:]),
    )
    train = {c: f if c in train_customers else f[:-1] for c, f in filtered.items()}
    return _log_split(
        Split(
            protocol="nbr",
            seed=seed,
            train=train,
            valid=_cases(filtered, valid),
            test=_cases(filtered, test),
        )
    )


PROTOCOLS: Mapping[str, Callable[..., Split]] = {"paper": paper_split, "nbr": nbr_split}


def make_split(funnels: Funnels, protocol: str, *, seed: int = 0) -> Split:
    """The split of ``funnels`` under the protocol named ``protocol`` ("paper" or "nbr")."""
    try:
        build = PROTOCOLS[protocol]
    except KeyError:
        raise ConfigError(
            f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}."
        ) from None
    return build(funnels, seed=seed)


def _cases(funnels: Funnels, customers: Sequence[str]) -> dict[str, EvaluationCase]:
    return {
        c: EvaluationCase(customer_id=c, history=tuple(funnels[c][:-1]), target=funnels[c][-1])
        for c in customers
    }


def _keep_items(basket: Basket, items: set[str]) -> Basket:
    """``basket`` restricted to ``items`` (quantities and amounts follow their items)."""
    keep = [i for i, item in enumerate(basket.items) if item in items]
    if len(keep) == len(basket.items):
        return basket
    return dataclasses.replace(
        basket,
        items=tuple(basket.items[i] for i in keep),
        quantities=tuple(basket.quantities[i] for i in keep),
        amounts=tuple(basket.amounts[i] for i in keep),
    )


def _log_split(split: Split) -> Split:
    sizes = ", ".join(
        f"{key}={value:,.2f}" if isinstance(value, float) else f"{key}={value:,}"
        for key, value in split.summary().items()
        if key not in ("protocol", "seed")
    )
    log.info("%s split (seed %d): %s", split.protocol, split.seed, sizes)
    return split
