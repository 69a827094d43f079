"""Every command has --help, and bad arguments say what was expected."""

from __future__ import annotations

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from citybrain.cli import app
from citybrain.terminal import UsageProblem

runner = CliRunner()


def all_command_paths(command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:  # noqa: ANN001
    paths = [prefix]
    if hasattr(command, "commands"):  # a group
        for name, sub in command.commands.items():
            paths.extend(all_command_paths(sub, (*prefix, name)))
    return paths


COMMANDS = all_command_paths(get_command(app))


def test_the_documented_commands_exist():
    names = {" ".join(path) for path in COMMANDS}
    assert {
        "broker start",
        "broker stop",
        "broker status",
        "topics",
        "produce",
        "ingest run",
        "ingest status",
        "bench ingest",
        "demo",
        "sim list",
        "sim run",
        "sim stream",
        "bench sim",
        "lake fuse",
        "lake show",
        "lake check",
        "bench lake",
        "evaluate",
        "bench priority",
        "bench incident",
        "incidents watch",
    } <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "citybrain")
def test_every_command_has_help(path):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize(
    "args, expected",
    [
        (["bench", "ingest", "--records", "0"], "--records"),
        (["bench", "ingest", "--invalid-fraction", "1.5"], "--invalid-fraction"),
        (["ingest", "run", "--workers", "lots"], "Invalid value for '--workers'"),
        (["bench", "priority", "--dispatches", "1"], "--dispatches"),
        (["bench", "incident", "--seeds", "1"], "--seeds"),
    ],
)
def test_bad_arguments_name_what_was_expected(args, expected):
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert expected in result.output


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["bench", "priority", "--results", "figures.txt"],
            "--results figures.txt: expected a .json file name",
        ),
        (["bench", "priority", "--scenarios", " , "], "--scenarios: expected at least one scenario name"),
        (["bench", "priority", "--plot", "trips.svg"], "--plot trips.svg: expected a .png file name"),
        (["bench", "incident", "--plot", "delay.svg"], "--plot delay.svg: expected a .png file name"),
        (["bench", "incident", "--results", "out.csv"], "--results out.csv: expected a .json file name"),
        (
            ["incidents", "watch", "--seeds", "1"],
            "--seeds 1: expected at least 2 (a significance test needs a spread)",
        ),
        (
            ["incidents", "watch", "--budget-minutes", "0"],
            "--budget-minutes 0: expected a positive number of minutes",
        ),
        (
            ["incidents", "watch", "--max-seconds", "-1"],
            "--max-seconds -1: expected a positive number of seconds",
        ),
        (
            ["incidents", "watch", "--group", "../x"],
            "--group '../x': expected letters, digits, '-' and '_' only",
        ),
    ],
)
def test_bad_values_are_refused_before_any_work(args, expected):
    """Checked by the command itself (a usage problem: exit 2 through ``main``)."""
    result = runner.invoke(app, args)
    assert isinstance(result.exception, UsageProblem)
    assert str(result.exception) == expected
