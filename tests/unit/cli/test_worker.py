"""``lens worker``: what the command does around Faust's worker."""

import argparse
import gc
from types import SimpleNamespace

import faust.worker
import pytest

import services.funnel.app
import services.kafka
from lens.cli import worker as worker_command
from lens.settings import LensSettings


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()  # what run() froze stays out of the collector's sight otherwise
    gc.set_threshold(*threshold)


def test_the_worker_freezes_what_it_built_and_widens_the_young_generation(
    monkeypatch, tmp_path, clean_lens_env, unfrozen
):
    """Objects made before Faust's worker starts (imports, the app) are frozen, so that full
    collections under load skip them, and the young generation holds 10,000 objects."""
    made, seen = [], {}

    class Worker:
        def __init__(self, app, **kwargs):
            made.append(app)

        def execute_from_commandline(self):
            seen["frozen"] = gc.get_freeze_count()
            seen["threshold"] = gc.get_threshold()
            seen["app frozen"] = not any(o is made[0] for o in gc.get_objects())

    app = SimpleNamespace(name="built before the worker runs")
    monkeypatch.setattr(faust.worker, "Worker", Worker)
    monkeypatch.setattr(services.funnel.app, "FunnelService",
                        lambda config: SimpleNamespace(app=app))
    monkeypatch.setattr(services.funnel.app, "ensure_topics", lambda service: [])
    monkeypatch.setattr(services.kafka, "wait_until_ready", lambda kafka, timeout_s: None)
    assert gc.get_freeze_count() == 0
    settings = LensSettings(run_dir=tmp_path, funnel_event_loop="asyncio")
    args = argparse.Namespace(no_model=True, loglevel="warning")
    assert worker_command.run(args, settings) == 0
    assert made == [app]
    assert seen["frozen"] > 0 and seen["app frozen"]
    assert seen["threshold"] == (worker_command.YOUNG_OBJECTS, *gc.get_threshold()[1:])
    assert worker_command.YOUNG_OBJECTS == 10_000
