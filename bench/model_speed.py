"""Training throughput of a LENS config: targets/s, batches/s, estimated epoch time, peak memory.

    .venv/bin/python bench/model_speed.py --data ../shared/data/ta_feng.csv.zip \
        --config lens1000 --protocol paper --steps 60

Times ``--steps`` training batches after ``--warmup`` batches (tracing) on the protocol's train
funnels, then extrapolates to one epoch (all batches). A "target" is one (funnel prefix, next basket)
pair; an "example" is one row of a batch (a prefix for a bidirectional FBE, a window of prefixes
for a unidirectional one).
"""

import argparse
import dataclasses
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--config", default="lens1000")
    parser.add_argument("--protocol", default="paper", choices=("paper", "nbr"))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--output-vocab", type=int, default=None)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="TF intra/inter op threads (0: TF default)")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from lens.data.loaders import load_funnels
    from lens.data.vocabulary import Vocabulary
    from lens.evaluation.protocols import make_split
    from lens.model.config import TrainingConfig, get_config
    from lens.model.dataset import UserIndex, _batches, build_session_table, make_dataset
    from lens.model.trained_lens import TrainedLens
    from lens.model.training import Trainer

    config = get_config(args.config)
    if args.output_vocab:
        config = dataclasses.replace(config, output_vocab_size=args.output_vocab)
    t0 = time.perf_counter()
    split = make_split(load_funnels(args.data).funnels, args.protocol)
    vocabulary = Vocabulary.build(split.train)
    users = UserIndex(sorted(split.train))
    table = build_session_table(split.train, vocabulary, users, config)
    prep = time.perf_counter() - t0
    training = TrainingConfig(batch_size=args.batch_size)
    n_batches = len(
        _batches(table, np.arange(table.num_examples), args.batch_size, training.bucket_boundaries, None)
    )
    trained = TrainedLens.create(config, vocabulary, users)
    trained.model.scaler.adapt(table.features[:-1])
    trainer = Trainer(trained.model, config, training)
    dataset = make_dataset(table, batch_size=args.batch_size, shuffle_seed=0).repeat()
    iterator = iter(dataset)
    t1 = time.perf_counter()
    for _ in range(args.warmup):
        trainer.train_step(next(iterator))
    warm = time.perf_counter() - t1
    examples = targets = 0
    t2 = time.perf_counter()
    for _ in range(args.steps):
        batch = next(iterator)
        losses = trainer.train_step(batch)
        examples += int(batch["lengths"].shape[0])
        targets += int(losses["targets"])
    seconds = time.perf_counter() - t2
    total_targets = table.num_targets
    result = {
        "config": config.name,
        "protocol": args.protocol,
        "examples_total": table.num_examples,
        "targets_total": total_targets,
        "batches_per_epoch": n_batches,
        "prep_seconds": round(prep, 1),
        "warmup_seconds": round(warm, 1),
        "timed_batches": args.steps,
        "seconds_per_batch": round(seconds / args.steps, 4),
        "examples_per_second": round(examples / seconds, 1),
        "targets_per_second": round(targets / seconds, 1),
        "estimated_epoch_seconds": round(total_targets / (targets / seconds), 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "final_loss": round(float(losses["loss"]), 4),
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
