"""The ``lens`` command line: one entry point, one subcommand module per command group.

Each module exposes ``register(subparsers)``, which adds its parser(s) and sets ``handler`` to a
function ``handler(args, settings) -> int``. Heavy imports (TensorFlow, Kafka clients) happen inside
handlers so that ``lens --help`` stays fast.
"""
