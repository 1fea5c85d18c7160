import pytest

from lens.cli.main import build_parser, main, settings_from_args


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("stack", "demo", "data", "train", "eval", "predict", "serve", "worker", "pos", "alerts"):
        assert command in out
    assert "LENS_" in out


@pytest.mark.parametrize("command", [["stack"], ["demo"]])
def test_each_command_explains_itself(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert len(capsys.readouterr().out.splitlines()) > 3


def test_flags_become_settings_overrides(clean_lens_env):
    args = build_parser().parse_args(["--run-dir", "/tmp/r", "stack", "status", "--kafka-port", "19"])
    settings = settings_from_args(args)
    assert str(settings.run_dir) == "/tmp/r" and settings.kafka_port == 19


def test_lens_errors_exit_2_with_a_message(clean_lens_env, capsys):
    assert main(["stack", "status", "--kafka-port", "0"]) == 2
    assert "lens: error: invalid LENS settings" in capsys.readouterr().err
