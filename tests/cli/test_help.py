"""Every command documents itself with examples."""

from __future__ import annotations

import pytest

from gpunet.cli import cli

COMMANDS = ["info", "train", "evaluate", "summary", "bench", "filters"]


def test_every_command_is_registered() -> None:
    assert set(COMMANDS) <= set(cli.commands)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_shows_examples(run_cli, command: str | None) -> None:
    outcome = run_cli(*([command] if command else []), "--help")
    assert outcome.code == 0
    assert "Examples:" in outcome.stdout
    assert "gpunet " + (command or "") in outcome.stdout.split("Examples:", 1)[1]


def test_unknown_command_is_a_usage_error(run_cli) -> None:
    outcome = run_cli("trian")
    assert outcome.code == 2
    assert "No such command 'trian'" in outcome.stderr
