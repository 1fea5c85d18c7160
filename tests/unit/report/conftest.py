"""The tiny trained run of the segments tests (``tests.unit.segments.conftest``)."""

from tests.unit.segments.conftest import funnels, reader, run_dir, trained, world  # noqa: F401
