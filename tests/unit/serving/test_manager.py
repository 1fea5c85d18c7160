import shutil

import grpc
import pytest
from serving.errors import ServingError
from serving.manager import ModelManager, State
from tests.unit.serving.fixtures import config_for, spec


def states(manager, name="toy"):
    return {s.version: State.Name(s.state) for s in manager.status(spec(name))}


def test_latest_policy_serves_the_newest_version(make_repo):
    manager = ModelManager(config_for(make_repo(1, 2)))
    manager.poll()
    assert manager.servable(spec()).version == 2
    assert manager.available_versions("toy") == [2]
    assert manager.all_models_available()


def test_new_version_is_loaded_before_the_old_one_is_unloaded(make_repo):
    events = []
    manager = ModelManager(
        config_for(make_repo(1)), on_change=lambda name, versions: events.append(versions)
    )
    manager.poll()
    old = manager.servable(spec())
    make_repo(2)
    manager.poll()
    # [1] after loading 1; [1, 2] while both are up; [2] once 1 is gone. Never [].
    assert events == [[1], [1, 2], [2]]
    assert manager.servable(spec()).version == 2
    assert states(manager) == {2: "AVAILABLE", 1: "END"}
    assert old.predict is not None  # a request holding version 1 can still finish on it


def test_specific_all_and_labels(make_repo):
    base = make_repo(1, 2, 3)
    manager = ModelManager(config_for(
        base, "model_version_policy { specific { versions: 1 versions: 3 } }",
        'version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 3 }',
    ))
    manager.poll()
    assert manager.available_versions("toy") == [1, 3]
    assert manager.servable(spec(label="stable")).version == 1
    assert manager.servable(spec(label="canary")).version == 3
    assert manager.servable(spec(version=1)).version == 1
    manager.apply_config(config_for(base, "model_version_policy { all {} }"))
    assert manager.available_versions("toy") == [1, 2, 3]


def test_not_found_and_label_errors_use_tf_serving_wording(make_repo):
    manager = ModelManager(config_for(make_repo(1)))
    manager.poll()
    cases = [
        (spec(name="other"), grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(other)"),
        (spec(version=3), grpc.StatusCode.NOT_FOUND, "Servable not found for request: Specific(toy, 3)"),
        (spec(label="gold"), grpc.StatusCode.INVALID_ARGUMENT, "Unrecognized servable version label: gold"),
    ]
    for model_spec, code, message in cases:
        with pytest.raises(ServingError) as info:
            manager.servable(model_spec)
        assert (info.value.code, info.value.message) == (code, message)


def test_status_errors(make_repo):
    manager = ModelManager(config_for(make_repo(1)))
    manager.poll()
    with pytest.raises(ServingError, match="^Could not find version 7 of model toy$"):
        manager.status(spec(version=7))
    with pytest.raises(ServingError, match="^Could not find any versions of model other$"):
        manager.status(spec(name="other"))
    assert [s.state for s in manager.status(spec(version=1))] == [State.AVAILABLE]


def test_a_broken_new_version_keeps_the_old_one_serving(make_repo):
    base = make_repo(1)
    manager = ModelManager(config_for(base), max_num_load_retries=0)
    manager.poll()
    (base / "2").mkdir()
    (base / "2" / "saved_model.pb").write_bytes(b"not a SavedModel")
    manager.poll()
    assert manager.servable(spec()).version == 1
    (broken,) = [s for s in manager.status(spec()) if s.version == 2]
    assert broken.state == State.END and broken.error


def test_a_model_left_out_of_the_config_is_unloaded(make_repo, tmp_path):
    base = make_repo(1)
    other = make_repo(1, base=tmp_path / "other")
    manager = ModelManager(config_for(base))
    manager.poll()
    manager.apply_config(config_for(other, name="other"))
    assert manager.servable(spec(name="other")).version == 1
    with pytest.raises(ServingError, match=r"Latest\(toy\)"):
        manager.servable(spec())
    assert states(manager) == {1: "END"}


def test_deleting_every_version_unloads_them(make_repo):
    base = make_repo(1)
    manager = ModelManager(config_for(base))
    manager.poll()
    shutil.rmtree(base / "1")
    manager.poll()
    assert not manager.all_models_available()


def test_a_label_only_moves_to_an_available_version(make_repo):
    base = make_repo(1)
    all_versions = "model_version_policy { all {} }"
    manager = ModelManager(config_for(base, all_versions, 'version_labels { key: "stable" value: 1 }'))
    manager.poll()
    # Version 2 is not on disk yet: "stable" stays on 1, as TF Serving refuses the assignment.
    manager.apply_config(config_for(base, all_versions, 'version_labels { key: "stable" value: 2 }'))
    assert manager.servable(spec(label="stable")).version == 1
    make_repo(2)
    manager.poll()
    assert manager.servable(spec(label="stable")).version == 2
