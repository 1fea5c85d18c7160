"""``lens segments products|customers``: need-based product segments and behavioural customer
segments from a trained LENS run, printed and written as CSV/JSON.

The options, the run loading and ``segments_for`` are shared with ``lens report``, so the
report shows exactly the segments these commands print.
"""

import argparse
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lens.cli.history_file import add_history_arguments, load_history
from lens.errors import ConfigError
from lens.settings import LensSettings

if TYPE_CHECKING:  # numpy/pandas/TensorFlow stay out of `lens --help`
    import pandas as pd

    from lens.data.basket import Funnels
    from lens.segments import CustomerSegments, FunnelReader, ProductSegments, PurityReport

__all__ = [
    "ProductResult",
    "Segmentation",
    "add_model_and_data",
    "add_product_options",
    "add_customer_options",
    "customer_segments_from",
    "load_run",
    "log_progress",
    "parse_k_range",
    "product_segments_from",
    "register",
    "segments_for",
]

log = logging.getLogger(__name__)

PRODUCT_K_RANGE_TEXT = "5:40:5"  # lens.segments.PRODUCT_K_RANGE, spelled out for --help
CUSTOMER_K_RANGE_TEXT = "2:8"  # lens.anomaly.fit_clusters' default, the live detector's


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segments",
        help="product and customer segments from a trained LENS model",
        description="The paper's by-products of the end-to-end model: need-based product segments "
        "(k-means over the learned item embeddings) and behavioural customer segments (the "
        "funnel-embedding clusters of the live anomaly detector, Algorithm 1), each profiled.",
    )
    commands = parser.add_subparsers(
        title="segment commands", metavar="SEGMENTS_COMMAND", required=True
    )

    products = commands.add_parser(
        "products",
        help="cluster the learned item embeddings into need-based product segments",
        description="k-means over the item embeddings of a trained LENS run. K: --k, or the best "
        "silhouette over --k-range (ties -> smaller K). Products: the decoder's output "
        "vocabulary (the most frequent training items; rarer items keep near-random "
        "embeddings), or the --items most frequent. Per segment: size, the products closest to "
        "the centroid with their basket counts in --data and, on a Ta-Feng file, the "
        "PRODUCT_SUBCLASS composition. On Ta-Feng it also prints the subclass purity next to a "
        "random-embedding control (same products, same K, Gaussian vectors) and a size-matched "
        "control (the segments shuffled over the products), --controls seeds each. Segments "
        "follow needs when the run started from co-purchase vectors (lens embed, then lens "
        "train --item-embeddings): the next-basket loss alone mostly sorts products by "
        "popularity.",
        epilog="Writes to --out: product_segments.csv (one row per segment), "
        "product_segment_members.csv (one row per product), product_segments.json (K, "
        "silhouette, purity) and product_segment_map.json (product -> segment, for "
        "lens.segments.SegmentMap). Example: lens segments products --model runs/lens1000 "
        "--data ta_feng.csv.zip",
    )
    add_model_and_data(products)
    add_product_options(products, prefix="")
    products.add_argument(
        "--top",
        type=int,
        default=5,
        help="representative products and subclasses shown per segment (default %(default)s)",
    )
    products.add_argument(
        "--out", type=Path, default=None, help="output directory (default: <model>/segments)"
    )
    products.set_defaults(handler=run_products)

    customers = commands.add_parser(
        "customers",
        help="cluster funnel embeddings into behavioural customer segments and profile them",
        description="Reads every customer of --data through the model (funnel embedding fE and "
        "predicted days to next visit) and clusters the embeddings with fk of Algorithm 1 "
        "(lens.anomaly.fit_clusters: k-means, K by silhouette over --k-range, the live "
        "detector's default), or assigns them to an existing cluster file (--clusters, the file "
        "`lens worker funnel --clusters` loads), so the segments agree with the anomaly "
        "detector. Each segment is profiled by visits, days between visits, basket size, spend, "
        "repeat share, top product segments (from `lens segments products` with its defaults "
        "or the --product-k options) and predicted days to next visit.",
        epilog="Writes to --out: customer_segments.csv (profiles), customer_segment_members.csv "
        "(customer -> segment, predicted days to next), customer_clusters.json (a "
        "lens.anomaly.ClusterModel: pass it to `lens worker funnel --clusters`). Example: lens "
        "segments customers --model runs/lens1000 --data ta_feng.csv.zip",
    )
    add_model_and_data(customers)
    add_customer_options(customers)
    add_product_options(customers, prefix="product-")
    customers.add_argument(
        "--out", type=Path, default=None, help="output directory (default: <model>/segments)"
    )
    customers.set_defaults(handler=run_customers)


# -- options shared with `lens report` ----------------------------------------------------------


def add_model_and_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        help="trained LENS run directory (lens train --out DIR)",
    )
    add_history_arguments(parser)
    parser.add_argument(
        "--seed", type=int, default=0, help="k-means and control seed (default %(default)s)"
    )


def add_product_options(parser: argparse.ArgumentParser, *, prefix: str) -> None:
    """--[product-]k, --[product-]k-range, --[product-]items, --controls."""
    parser.add_argument(
        f"--{prefix}k",
        type=int,
        default=None,
        help="number of product segments (default: chosen by silhouette)",
    )
    parser.add_argument(
        f"--{prefix}k-range",
        type=parse_k_range,
        default=PRODUCT_K_RANGE_TEXT,
        help="product K candidates FROM:TO[:STEP], TO included (default %(default)s)",
    )
    parser.add_argument(
        f"--{prefix}items",
        type=int,
        default=None,
        help="segment the N most frequent training products (default: the "
        "decoder's output vocabulary)",
    )
    if not prefix:
        parser.add_argument(
            "--controls",
            type=int,
            default=5,
            help="random-embedding control seeds for the purity figure (default %(default)s)",
        )


def add_customer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--k",
        type=int,
        default=None,
        help="number of customer segments (default: chosen by silhouette)",
    )
    parser.add_argument(
        "--k-range",
        type=parse_k_range,
        default=CUSTOMER_K_RANGE_TEXT,
        help="customer K candidates FROM:TO[:STEP], TO included (default %(default)s, the "
        "live detector's)",
    )
    parser.add_argument(
        "--clusters",
        dest="cluster_model",
        type=Path,
        default=None,
        metavar="FILE",
        help="assign customers to this lens.anomaly.ClusterModel file instead "
        "of fitting one (env LENS_CLUSTER_MODEL, the live worker's clusters)",
    )


def parse_k_range(text: str) -> range:
    """ "FROM:TO[:STEP]" (TO included) -> range; argparse turns the error into a usage message."""
    try:
        parts = [int(p) for p in text.split(":")]
    except ValueError:
        parts = []
    if (
        len(parts) not in (2, 3)
        or parts[0] < 2
        or parts[1] < parts[0]
        or (len(parts) == 3 and parts[2] < 1)
    ):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not FROM:TO[:STEP] with 2 <= FROM <= TO and STEP >= 1 (e.g. 5:40:5)"
        )
    step = parts[2] if len(parts) == 3 else 1
    return range(parts[0], parts[1] + 1, step)


# -- steps shared with `lens report` ------------------------------------------------------------


def load_run(path: Path):
    """The TrainedLens of a run directory (ConfigError when it is not one)."""
    from lens.model import TrainedLens

    if not path.is_dir():
        raise ConfigError(f"{path}: not a directory; pass a trained run (lens train --out DIR)")
    log.info("loading the LENS run %s", path)
    return TrainedLens.load(path)


@dataclass(frozen=True)
class ProductResult:
    """Product segments and their tables: ``summary`` (per segment), ``members`` (per product),
    ``purity`` (None without subclasses) and ``info`` (the JSON summary)."""

    segments: "ProductSegments"
    summary: "pd.DataFrame"
    members: "pd.DataFrame"
    purity: "PurityReport | None"
    info: dict


def product_segments_from(
    trained,
    funnels: "Funnels",
    data: Path,
    *,
    k: int | None,
    k_range: range,
    items: int | None,
    seed: int,
    controls: int = 5,
    top: int = 5,
) -> ProductResult:
    from lens.segments import (
        decoder_products,
        product_frequencies,
        read_product_subclasses,
        segment_products,
    )

    if items is not None and items < 2:
        raise ConfigError(f"--items must be >= 2, got {items}")
    products = decoder_products(trained) if items is None else trained.vocabulary.items[:items]
    log.info(
        "segmenting %s products (K %s)",
        f"{len(products):,}",
        k if k is not None else f"by silhouette over {list(k_range)}",
    )
    segments = segment_products(trained, products, k=k, k_range=k_range, seed=seed)
    frequencies = product_frequencies(funnels)
    subclasses = read_product_subclasses(data)
    purity = None
    if subclasses is not None:
        log.info("scoring subclass purity against %d random-embedding controls", controls)
        purity = segments.purity(subclasses, controls=controls)
    info = {
        "products": len(segments.products),
        "k": segments.k,
        "k_candidates": None if k is not None else list(k_range),
        "silhouette": None if math.isnan(segments.model.silhouette) else segments.model.silhouette,
        "seed": seed,
        "purity": purity.to_dict() if purity is not None else None,
    }
    return ProductResult(
        segments,
        segments.summary(frequencies, subclasses, top=top),
        segments.members(frequencies, subclasses),
        purity,
        info,
    )


def customer_segments_from(
    reader: "FunnelReader",
    funnels: "Funnels",
    *,
    k: int | None,
    k_range: range,
    clusters: Path | None,
    seed: int,
) -> "CustomerSegments":
    from lens.anomaly import ClusterModel
    from lens.segments import segment_customers

    model = ClusterModel.load(clusters) if clusters is not None else None
    log.info("reading %s customers through the model", f"{len(funnels):,}")
    return segment_customers(
        reader, funnels, clusters=model, k=k, k_range=k_range, seed=seed, progress=log_progress
    )


@dataclass(frozen=True)
class Segmentation:
    """What ``lens segments customers`` and ``lens report`` both show: the product segments, the
    customer segments and one profile row per customer segment."""

    products: ProductResult
    customers: "CustomerSegments"
    profile: "pd.DataFrame"


def segments_for(
    args: argparse.Namespace, settings: LensSettings, reader: "FunnelReader", funnels: "Funnels"
) -> Segmentation:
    """Product segments from the --product-* options, then customer segments (--k, --k-range,
    --clusters) profiled with them. One function for both commands, so that the report shows
    exactly the segments ``lens segments customers`` prints."""
    from lens.segments import profile_segments

    products = product_segments_from(
        reader.trained,
        funnels,
        args.data,
        k=args.product_k,
        k_range=args.product_k_range,
        items=args.product_items,
        seed=args.seed,
    )
    customers = customer_segments_from(
        reader,
        funnels,
        k=args.k,
        k_range=args.k_range,
        clusters=settings.cluster_model,
        seed=args.seed,
    )
    profile = profile_segments(funnels, customers, products.segments)
    return Segmentation(products, customers, profile)


def log_progress(done: int, total: int) -> None:
    log.info("  %s / %s customers", f"{done:,}", f"{total:,}")


# -- handlers ---------------------------------------------------------------------------------


def run_products(args: argparse.Namespace, settings: LensSettings) -> int:
    from lens.report import write_tables
    from lens.segments import PRODUCT_MAP_FILE, SegmentMap

    trained = load_run(args.model)
    result = product_segments_from(
        trained,
        load_history(args.data, args.skip_bad).funnels,
        args.data,
        k=args.k,
        k_range=args.k_range,
        items=args.items,
        seed=args.seed,
        controls=args.controls,
        top=args.top,
    )
    out = args.out or args.model / "segments"
    paths = write_tables(
        out, {"product_segments": result.summary, "product_segment_members": result.members}
    )
    info_path = out / "product_segments.json"
    info_path.write_text(json.dumps(result.info, indent=2) + "\n")
    SegmentMap(products=result.segments.mapping()).save(out)
    paths += [info_path, out / PRODUCT_MAP_FILE]
    print(_table_text(result.summary))
    print(
        f"\n{result.info['products']:,} products in {result.segments.k} segments"
        + (
            f" (silhouette {result.info['silhouette']:.3f})"
            if result.info["silhouette"] is not None
            else ""
        )
    )
    print(
        result.purity.describe()
        if result.purity is not None
        else "no PRODUCT_SUBCLASS column in --data: no purity figure (Ta-Feng files have one)"
    )
    print("wrote " + ", ".join(map(str, paths)))
    return 0


def run_customers(args: argparse.Namespace, settings: LensSettings) -> int:
    from lens.report import write_tables
    from lens.segments import CUSTOMER_CLUSTERS_FILE, FunnelReader, SegmentMap

    trained = load_run(args.model)
    funnels = load_history(args.data, args.skip_bad).funnels
    segments = segments_for(args, settings, FunnelReader(trained), funnels)
    customers = segments.customers
    out = args.out or args.model / "segments"
    paths = write_tables(
        out,
        {"customer_segments": segments.profile, "customer_segment_members": customers.members()},
    )
    SegmentMap(clusters=customers.model).save(out)
    paths.append(out / CUSTOMER_CLUSTERS_FILE)
    print(_table_text(segments.profile))
    print(f"\n{len(customers.readout.customers):,} customers in {customers.k} segments")
    print("wrote " + ", ".join(map(str, paths)))
    return 0


def _table_text(table: "pd.DataFrame") -> str:
    import pandas as pd

    with pd.option_context(
        "display.max_colwidth", 80, "display.width", 200, "display.float_format", "{:.3g}".format
    ):
        return table.to_string(index=False)
