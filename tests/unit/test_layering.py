"""The core library stays plain Python + TensorFlow: no Kafka, Faust or gRPC below lens/."""

import ast
from pathlib import Path

LENS = Path(__file__).resolve().parents[2] / "lens"
FORBIDDEN = {"confluent_kafka", "faust", "aiokafka", "grpc", "mode", "services", "serving"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_modules_do_not_import_kafka_or_grpc():
    offenders = {}
    for path in LENS.rglob("*.py"):
        # lens/cli is the composition root; generated protobuf code imports only protobuf.
        if "cli" in path.relative_to(LENS).parts:
            continue
        bad = imported_roots(path) & FORBIDDEN
        if bad:
            offenders[str(path.relative_to(LENS))] = sorted(bad)
    assert offenders == {}


def test_cli_reaches_services_only_inside_handlers():
    # Module-level imports of services would make `lens --help` pay for Kafka and TensorFlow.
    for path in (LENS / "cli").rglob("*.py"):
        tree = ast.parse(path.read_text())
        top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        for node in top_level:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            assert not any(n.split(".")[0] in FORBIDDEN | {"tensorflow"} for n in names), path
