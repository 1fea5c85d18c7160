"""`lens report` arguments; the full run is tests/integration/test_report_browser.py."""

import pytest

from lens.cli.main import main


def test_report_explains_itself(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in ("report.html", "--resupply", "anomaly_scores.csv", "stockout_risk.csv"):
        assert name in out


def test_a_bad_resupply_plan_fails_before_the_model_runs(tmp_path, capsys, clean_lens_env):
    plan = tmp_path / "plan.csv"
    plan.write_text("STORE_ID,PROD_ID\nS1,P1\n")
    code = main(
        [
            "report",
            "--model",
            str(tmp_path / "no-run"),
            "--data",
            str(tmp_path / "tx.csv"),
            "--resupply",
            str(plan),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
    assert "missing column(s)" in capsys.readouterr().err
