"""Hypothesis strategies for bad input: random and mutated bytes, and LENS events whose fields
take extreme values (empty or odd ids, any float, any timestamp the wire format can carry)."""

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import strategies as st

from lens import v1
from tests.unit.services.funnel.conftest import T0_US

INT64 = st.integers(-(2**63), 2**63 - 1)
INT32 = st.integers(-(2**31), 2**31 - 1)
UINT32 = st.integers(0, 2**32 - 1)
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
# Ids: mostly a few known ones (so events meet each other), sometimes empty or arbitrary text.
IDS = st.one_of(st.sampled_from(["c1", "c2", "S1", "P1", "T1"]), st.just(""), st.text(max_size=12))
# Event times: near T0 (real sessions), or anything a Timestamp can hold.
NEAR_T0 = st.integers(T0_US - 86_400_000_000, T0_US + 86_400_000_000).map(
    lambda us: Timestamp(seconds=us // 1_000_000, nanos=us % 1_000_000 * 1000)
)
TIMESTAMPS = st.one_of(NEAR_T0, st.builds(Timestamp, seconds=INT64, nanos=INT32))
QUANTITIES = st.one_of(st.floats(0.001, 10_000), ANY_FLOAT)


def optional_timestamp():
    return st.one_of(TIMESTAMPS, st.none())


@st.composite
def transaction_lines(draw) -> v1.TransactionLine:
    return v1.TransactionLine(
        transaction_id=draw(IDS), line_no=draw(st.one_of(st.integers(0, 5), UINT32)),
        customer_id=draw(IDS), store_id=draw(IDS), product_id=draw(IDS),
        timestamp=draw(optional_timestamp()), quantity=draw(QUANTITIES), amount=draw(QUANTITIES),
    )


@st.composite
def baskets_closed(draw) -> v1.BasketClosed:
    return v1.BasketClosed(
        transaction_id=draw(IDS), customer_id=draw(IDS), store_id=draw(IDS),
        timestamp=draw(optional_timestamp()), line_count=draw(UINT32),
    )


POS_EVENTS = st.one_of(
    transaction_lines().map(lambda line: v1.PosEvent(line=line)),
    baskets_closed().map(lambda close: v1.PosEvent(basket_closed=close)),
    st.just(v1.PosEvent()),
)

RESUPPLIES = st.builds(
    v1.Resupply, store_id=IDS, product_id=IDS,
    day=st.one_of(st.dates().map(str), st.text(max_size=12)), quantity=ANY_FLOAT,
)


@st.composite
def mutated(draw, messages) -> bytes:
    """A valid encoding with bytes flipped, cut off or inserted: near misses of the format."""
    data = bytearray(draw(messages).SerializeToString())
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        at = draw(st.integers(0, len(data)))
        if action == "flip" and data:
            data[min(at, len(data) - 1)] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


def wire_bytes(messages):
    """Bytes a consumer may meet: random, a mutated encoding, or a valid one."""
    return st.one_of(
        st.binary(max_size=64), mutated(messages), messages.map(lambda m: m.SerializeToString())
    )


@st.composite
def plausible_pos_events(draw) -> v1.PosEvent:
    """Valid-looking events of a few customers, baskets and products within hours of T0, so a
    stream of them opens and closes real sessions, with resends and late lines."""
    customer = draw(st.sampled_from(["c1", "c2", "c3"]))
    transaction = f"{customer}-T{draw(st.integers(1, 3))}"
    at_us = T0_US + draw(st.integers(0, 3 * 3600)) * 1_000_000
    at = Timestamp(seconds=at_us // 1_000_000, nanos=at_us % 1_000_000 * 1000)
    store = draw(st.sampled_from(["S1", "S2", "S-unknown"]))
    if draw(st.integers(0, 4)) == 0:
        return v1.PosEvent(basket_closed=v1.BasketClosed(
            transaction_id=transaction, customer_id=customer, store_id=store, timestamp=at,
        ))
    return v1.PosEvent(line=v1.TransactionLine(
        transaction_id=transaction, line_no=draw(st.integers(1, 4)), customer_id=customer,
        store_id=store, product_id=draw(st.sampled_from(["milk", "bread", "never-seen-before"])),
        timestamp=at, quantity=draw(st.floats(0.5, 10)), amount=draw(st.floats(0, 50)),
    ))


PREDICTED_ITEMS = st.builds(v1.PredictedItem, product_id=IDS, score=ANY_FLOAT, quantity=ANY_FLOAT)
PREDICTIONS = st.builds(
    v1.Prediction, prediction_id=IDS, customer_id=st.sampled_from(["c1", "c2", "c3", ""]),
    store_id=IDS, as_of=TIMESTAMPS, session_index=st.integers(0, 2**64 - 1),
    basket=st.lists(PREDICTED_ITEMS, max_size=3), days_to_next=ANY_FLOAT,
    model=st.builds(v1.ModelRef, name=IDS, version=st.integers(0, 2**63 - 1)),
)
