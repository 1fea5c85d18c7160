"""`lens segments products|customers` on the tiny trained run of this folder's conftest."""

import argparse
import json

import pytest

from lens.anomaly import ClusterModel
from lens.cli.main import main
from lens.cli.segments import CUSTOMER_K_RANGE_TEXT, PRODUCT_K_RANGE_TEXT, parse_k_range
from lens.segments import PRODUCT_K_RANGE, SegmentMap


def test_k_ranges_include_their_end():
    assert parse_k_range("5:40:5") == range(5, 41, 5)
    assert list(parse_k_range("2:4")) == [2, 3, 4]
    for bad in ("5", "1:4", "6:5", "2:8:0", "a:b"):
        with pytest.raises(argparse.ArgumentTypeError, match="FROM:TO"):
            parse_k_range(bad)


def test_the_default_k_ranges_are_the_librarys():
    import inspect

    from lens.anomaly import fit_clusters

    assert parse_k_range(PRODUCT_K_RANGE_TEXT) == PRODUCT_K_RANGE
    # Customer segments use the live detector's K range.
    default = inspect.signature(fit_clusters).parameters["k_range"].default
    assert parse_k_range(CUSTOMER_K_RANGE_TEXT) == default


@pytest.mark.parametrize("command", ["products", "customers"])
def test_each_segments_command_explains_itself(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["segments", command, "--help"])
    assert exit_info.value.code == 0
    assert "silhouette" in capsys.readouterr().out


def test_products_prints_and_writes_the_segments(run_dir, world, tmp_path, capsys, clean_lens_env):
    out = tmp_path / "seg"
    code = main(
        [
            "segments",
            "products",
            "--model",
            str(run_dir),
            "--data",
            str(world["transactions"]),
            "--k",
            "4",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "62 products in 4 segments" in printed  # tiny: output vocabulary 64 = 62 products
    assert "no PRODUCT_SUBCLASS column" in printed  # a synthetic world is not Ta-Feng
    info = json.loads((out / "product_segments.json").read_text())
    assert info["k"] == 4 and info["purity"] is None and info["k_candidates"] is None
    for name in ("product_segments.csv", "product_segment_members.csv"):
        assert (out / name).is_file()
    assert len(SegmentMap.load(out).products) == 62


def test_customers_writes_clusters_the_worker_and_a_rerun_can_use(
    run_dir, world, tmp_path, capsys, clean_lens_env
):
    data = ["--model", str(run_dir), "--data", str(world["transactions"])]
    first, second = tmp_path / "first", tmp_path / "second"
    assert (
        main(["segments", "customers", *data, "--k", "2", "--product-k", "3", "--out", str(first)])
        == 0
    )
    assert "customers in 2 segments" in capsys.readouterr().out
    clusters = first / "customer_clusters.json"
    assert ClusterModel.load(clusters).k == 2
    assert (
        main(
            [
                "segments",
                "customers",
                *data,
                "--clusters",
                str(clusters),
                "--product-k",
                "3",
                "--out",
                str(second),
            ]
        )
        == 0
    )
    assert (first / "customer_segment_members.csv").read_text() == (
        second / "customer_segment_members.csv"
    ).read_text()


def test_a_model_that_is_not_a_run_is_a_clear_error(world, tmp_path, capsys, clean_lens_env):
    code = main(
        [
            "segments",
            "products",
            "--model",
            str(tmp_path / "nope"),
            "--data",
            str(world["transactions"]),
        ]
    )
    assert code == 2
    assert "lens train --out" in capsys.readouterr().err
