import datetime as dt

from lens import v1
from lens.data.loaders import load_funnels
from lens.history import AppendResult, SessionStore
from tests.unit.history.conftest import session


def test_a_redelivered_session_is_stored_once(tmp_path):
    first = [session("c1", 1, 5, {"milk": 1, "bread": 2}), session("c2", 1, 6, {"tea": 1})]
    with SessionStore(tmp_path / "h.sqlite") as store:
        assert store.append(first) == AppendResult(stored=2)
        # The batch comes back after a crash before the commit, plus one new session.
        again = store.append([*first, session("c1", 2, 9, {"milk": 1})])
        assert again == AppendResult(stored=1, duplicates=2)
        assert store.counts() == {"sessions": 3, "lines": 4, "customers": 2}


def test_sessions_that_cannot_be_keyed_or_replayed_are_refused(tmp_path):
    no_items = session("c1", 1, 5, {})
    no_index = session("c1", 0, 5, {"milk": 1})
    with SessionStore(tmp_path / "h.sqlite") as store:
        assert store.append([no_items, no_index]) == AppendResult(refused=2)
        assert store.counts()["lines"] == 0


def test_the_store_survives_a_reopen(tmp_path):
    path = tmp_path / "h.sqlite"
    with SessionStore(path) as store:
        store.append([session("c1", 1, 5, {"milk": 1})])
    with SessionStore(path) as store:
        assert store.append([session("c1", 1, 5, {"milk": 1})]).duplicates == 1
        assert store.newest() == dt.datetime(2026, 1, 5, 10, 0)


def test_export_is_a_minimal_csv_the_loaders_read_back(tmp_path):
    unknown_store = session("c2", 1, 7, {"tea": 3}, store="")
    with SessionStore(tmp_path / "h.sqlite") as store:
        store.append([
            session("c1", 2, 9, {"milk": 1}), session("c1", 1, 5, {"milk": 1, "bread": 2}), unknown_store,
        ])
        assert store.export_csv(tmp_path / "out.csv") == 4
    header = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert header == "TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT,PRODT_QTY,STORE_ID"
    funnels = load_funnels(tmp_path / "out.csv").funnels
    c1 = funnels["c1"]
    assert [b.basket_id for b in c1] == ["T-c1-1", "T-c1-2"]  # chronological
    assert c1[0].items == ("milk", "bread") and c1[0].quantities == (1.0, 2.0)
    assert c1[0].amounts == (2.0, 4.0) and c1[0].store_id == "S1"
    assert c1[0].timestamp == dt.datetime(2026, 1, 5, 10, 0)
    assert funnels["c2"][0].store_id == "1"  # the minimal schema's default store


def test_windows_count_back_from_the_newest_session(tmp_path):
    with SessionStore(tmp_path / "h.sqlite") as store:
        store.append([
            session("old", 1, 1, {"milk": 1}),
            session("mid", 1, 8, {"milk": 1}),
            session("new", 1, 10, {"tea": 1}),
        ])
        assert store.active_customers(2) == ["mid", "new"]  # day 8 10:00 is exactly 2 days back
        assert store.export_csv(tmp_path / "w.csv", since_days=2) == 2
        assert sorted(load_funnels(tmp_path / "w.csv").funnels) == ["mid", "new"]


def test_an_empty_store_has_no_active_customers(tmp_path):
    with SessionStore(tmp_path / "h.sqlite") as store:
        assert store.newest() is None
        assert store.active_customers(30) == []
        assert store.export_csv(tmp_path / "e.csv", since_days=30) == 0


def test_backfilled_flag_does_not_change_the_key(tmp_path):
    live = session("c1", 1, 5, {"milk": 1})
    replayed = v1.Session()
    replayed.CopyFrom(live)
    replayed.backfilled = True
    with SessionStore(tmp_path / "h.sqlite") as store:
        store.append([live])
        assert store.append([replayed]).duplicates == 1
