"""Day-to-day scoring: `lens predict --active DAYS` over the customers of the history store."""

import json

from lens.cli.main import main
from lens.history import SessionStore
from tests.unit.history.conftest import session


def test_every_recently_active_customer_gets_a_prediction_from_their_whole_history(tmp_path):
    store = tmp_path / "h.sqlite"
    with SessionStore(store) as history:
        history.append([
            session("lapsed", 1, 1, {"tea": 1}),
            session("loyal", 1, 2, {"milk": 1, "bread": 1}),
            session("loyal", 2, 9, {"milk": 2}),
            session("new", 1, 10, {"jam": 1}),
        ])
    out = tmp_path / "p.jsonl"
    code = main(["predict", "--model", "personal-top", "--active", "3", "--store", str(store),
                 "--out", str(out)])
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["customer_id"] for line in lines] == ["loyal", "new"]
    # personal-top ranks a customer's own items by frequency: milk (2 baskets) before bread (1).
    assert lines[0]["items"][:2] == ["milk", "bread"]
    assert lines[1]["items"][0] == "jam"


def test_active_does_not_mix_with_the_other_sources(tmp_path, capsys):
    code = main(["predict", "--model", "personal-top", "--active", "3", "--history", "x.csv",
                 "--customers", "c.txt", "--out", str(tmp_path / "p.jsonl")])
    assert code == 2
    assert "--active DAYS" in capsys.readouterr().err
