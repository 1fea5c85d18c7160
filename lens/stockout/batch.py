"""Algorithm 2 in batch (``lens stockouts``): a history and a resupply plan -> the short cells.

    funnel states  = the worker's FunnelState per customer (``customer_states``) or per store
                     (``store_states``, the customer-agnostic variant), built by the same
                     Sessionizer / StoreFunnel the worker runs
    predictions    = the model's next basket and days_to_next from each funnel's kept sessions,
                     as the v1.Prediction the worker would publish (``batch_predictions``)
    alerts         = ``oos_alerts(predictions, resupplies, histories)``, the histories being
                     the funnel states' kept sessions (the worker's per-product rhythms come
                     from them), without the cells of days the worker would already have
                     expired (``stockout_report``)

The store a customer's demand goes to is the worker's rule (``FunnelState.expected_store``: the
most frequent store among the kept sessions, ties -> the most recent), so a batch run over the
history a worker has consumed reports the cells that worker holds.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lens import v1
from lens.data.basket import Funnels
from lens.errors import DataError
from lens.stockout.demand import StockoutConfig
from lens.stockout.monitor import oos_alerts
from lens.stockout.store_funnel import StoreFunnel
from lens.stream import FunnelState, Sessionizer, SessionizerConfig
from lens.stream.event_time import MICROS_PER_DAY, from_timestamp, iso_date, to_timestamp

if TYPE_CHECKING:  # lens.baselines imports xgboost
    from lens.baselines.recommender import NextBasket, Recommender

__all__ = [
    "StockoutReport",
    "batch_predictions",
    "customer_states",
    "history_before",
    "prediction_of",
    "stockout_report",
    "store_states",
]


def history_before(funnels: Funnels, day: str) -> dict[str, tuple]:
    """The baskets before ``day`` (ISO date; naive UTC timestamps): the history as it stood
    that morning, to replay a past forecast against what happened."""
    kept = {
        c: tuple(b for b in f if b.timestamp.date().isoformat() < day) for c, f in funnels.items()
    }
    return {c: f for c, f in kept.items() if f}


def customer_states(
    funnels: Funnels, config: SessionizerConfig = SessionizerConfig()
) -> dict[str, FunnelState]:
    """Each customer's FunnelState after its history, as ``lens backfill`` leaves it in the
    worker: the last ``config.max_sessions`` sessions kept, stats over all of them."""
    sessionizer = Sessionizer(config)
    states = {}
    for customer, funnel in funnels.items():
        state = states[customer] = sessionizer.new_state(customer)
        for basket in funnel:
            sessionizer.backfill(state, basket)
    return states


def store_states(lines: Iterable[v1.TransactionLine]) -> dict[str, FunnelState]:
    """The customer-agnostic funnels: each store's day baskets (``StoreFunnel``) from every line
    of the history in time order; the last day of each store is closed too."""
    funnels: dict[str, StoreFunnel] = {}
    for line in lines:
        funnel = funnels.get(line.store_id)
        if funnel is None:
            funnel = funnels[line.store_id] = StoreFunnel(line.store_id)
        funnel.on_line(line)
    states = {}
    for store_id, funnel in funnels.items():
        assert funnel.state is not None
        if funnel.state.open_basket is not None:
            funnel.close_idle(funnel.state.open_basket.last_activity + 2 * MICROS_PER_DAY)
        states[store_id] = funnel.state
    return states


def prediction_of(state: FunnelState, answer: "NextBasket", model: v1.ModelRef) -> v1.Prediction:
    """The v1.Prediction the worker would publish for ``state`` with this model answer: as of
    the last kept session, for the expected store. An item's score is its ranking score (0 when
    the ranking leaves it out); days_to_next None (a model without a time head) -> NaN, which
    adds no demand."""
    last = state.sessions[-1]
    ranked = dict(zip(answer.items, answer.scores, strict=False))
    quantities = list(answer.quantities) + [0.0] * (len(answer.basket) - len(answer.quantities))
    basket = [
        v1.PredictedItem(product_id=p, score=float(ranked.get(p, 0.0)), quantity=float(q))
        for p, q in zip(answer.basket, quantities, strict=False)
    ]
    days = float("nan") if answer.days_to_next is None else max(0.0, float(answer.days_to_next))
    return v1.Prediction(
        prediction_id=f"{state.customer_id}:{last.session_index}",
        customer_id=state.customer_id,
        store_id=state.expected_store(),
        as_of=to_timestamp(last.timestamp),
        session_index=last.session_index,
        basket=basket,
        ranking=[v1.PredictedItem(product_id=p, score=float(s)) for p, s in ranked.items()],
        days_to_next=days,
        model=model,
    )


def batch_predictions(
    states: Mapping[str, FunnelState],
    recommender: "Recommender",
    *,
    model: v1.ModelRef,
    k: int = 20,
) -> list[v1.Prediction]:
    """One prediction per funnel with a session, from its kept sessions (what the worker sends
    the model). ``recommender`` is fitted on those funnels (a trained LENS run keeps its
    weights); funnels the model gives no answer for are left out."""
    from lens.evaluation.evaluator import predict_all  # imports the baselines (xgboost)

    histories = {key: state.baskets() for key, state in states.items() if state.sessions}
    if not histories:
        raise DataError("no funnel has a session: nothing to predict demand from")
    recommender.fit(histories)
    answers = predict_all(recommender, histories, k=k)
    return [prediction_of(states[key], answers[key], model) for key in histories if key in answers]


@dataclass(frozen=True)
class StockoutReport:
    """``alerts``: a StockoutAlert per short cell (store, day, product order); ``since``: the
    first day kept (ISO date); ``no_time``: predictions without days_to_next (their basket adds
    no demand; the rhythms of their history do)."""

    alerts: list[v1.StockoutAlert]
    since: str
    predictions: int
    no_time: int


def stockout_report(
    predictions: list[v1.Prediction],
    resupplies: Iterable[v1.Resupply],
    config: StockoutConfig = StockoutConfig(),
    *,
    states: Mapping[str, FunnelState],
) -> StockoutReport:
    """Batch Algorithm 2 over the newest prediction of each contributor, with the kept sessions
    of its funnel state in ``states`` (what ``batch_predictions`` predicted from). Cells of
    days before the day preceding the newest prediction are dropped, as the worker expires them,
    so a customer who stopped coming long ago adds no demand to days long past."""
    if not predictions:
        raise DataError("no predictions: the model answered for no funnel")
    newest = max(from_timestamp(p.as_of) for p in predictions)
    since = iso_date(newest - MICROS_PER_DAY)
    histories = {state.customer_id: state.baskets() for state in states.values()}
    alerts = [a for a in oos_alerts(predictions, resupplies, config, histories) if a.day >= since]
    no_time = sum(p.days_to_next != p.days_to_next for p in predictions)  # NaN
    return StockoutReport(alerts, since, len(predictions), no_time)
