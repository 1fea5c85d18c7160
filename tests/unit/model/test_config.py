import dataclasses

import pytest

from lens.errors import ConfigError
from lens.model.config import CONFIGS, END_THRESHOLD, LensConfig, get_config


def test_presets_follow_table_1_of_the_paper():
    lens1000, lens2000 = CONFIGS["lens1000"], CONFIGS["lens2000"]
    assert (lens1000.sce_units, lens1000.fbe_units, lens1000.nsd_units) == ((64,), (256,), (512,))
    assert (lens2000.sce_units, lens2000.fbe_units, lens2000.nsd_units) == ((256,), (256, 256), (512, 128))
    assert lens1000.fbe_bidirectional and lens2000.fbe_bidirectional
    assert lens1000.fbe_output_dim == 512  # forward + backward states of 256
    assert not (lens1000.repeat_path or lens2000.repeat_path)  # not in the paper


def test_repeat_presets_are_table_1_plus_the_repeat_path_and_its_end_threshold():
    for name in ("lens1000", "lens2000"):
        repeat = CONFIGS[f"{name}r"]
        assert repeat.repeat_path and repeat.end_threshold == END_THRESHOLD
        plain = dataclasses.replace(repeat, name=name, repeat_path=False, end_threshold=0.0)
        assert plain == CONFIGS[name]
    assert CONFIGS["tiny"].repeat_path


def test_configs_saved_before_the_end_threshold_decode_as_before():
    old = CONFIGS["lens1000r"].to_dict()
    del old["end_threshold"]
    assert LensConfig.from_dict(old).end_threshold == 0.0


def test_configs_saved_before_the_repeat_path_load_without_it():
    old = CONFIGS["lens1000"].to_dict()
    del old["repeat_path"]
    assert LensConfig.from_dict(old) == CONFIGS["lens1000"]


def test_config_is_frozen_and_round_trips():
    config = CONFIGS["tiny"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.name = "x"
    assert LensConfig.from_dict(config.to_dict()) == config


def test_bad_settings_raise_config_errors():
    with pytest.raises(ConfigError, match="time_loss"):
        LensConfig(time_loss="huber")
    with pytest.raises(ConfigError, match="end_threshold"):
        LensConfig(end_threshold=1.5)
    with pytest.raises(ConfigError, match="lens1000"):
        get_config("lens3000")
