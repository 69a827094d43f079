"""Users: argon2 hashes, roles, disabling instead of deleting, an audit entry per change, and the
``citybrain users`` commands as an admin runs them (bad input: one line, exit status 2)."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citybrain.cli import app
from console import audit, users
from core import database
from core.settings import Settings
from tests.unit.console.plans_and_users import PASSWORD

CLI = [sys.executable, "-c", "from citybrain.cli import main; main()"]


@pytest.fixture
def engine(tmp_path):
    return database.open_database(Settings(var_dir=tmp_path / "var"))


def test_a_user_is_stored_with_an_argon2id_hash_and_verified(engine):
    added = users.add(engine, "olga", users.OPERATOR, PASSWORD, actor="cli:root")
    assert (added.name, added.role, added.disabled, added.decides) == ("olga", "operator", False, True)
    with engine.connect() as connection:
        (stored,) = connection.exec_driver_sql("SELECT password_hash FROM users").one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert users.verify(engine, "olga", PASSWORD) == added
    assert users.verify(engine, "olga", PASSWORD + "!") is None
    assert users.verify(engine, "nobody", PASSWORD) is None
    (entry,) = audit.entries(engine)
    assert (entry.actor, entry.action, entry.target, entry.detail) == (
        "cli:root",
        "user.add",
        "olga",
        {"role": "operator"},
    )


@pytest.mark.parametrize(
    "name, role, password, expected",
    [
        ("olga smith", "operator", PASSWORD, "user name"),
        ("", "operator", PASSWORD, "user name"),
        ("olga", "superuser", PASSWORD, "expected one of viewer, operator, admin"),
        ("olga", "operator", "short", "at least 12 characters"),
        ("olga", "operator", "x" * 2000, "at most 1024 characters"),
    ],
)
def test_bad_users_are_refused_with_the_reason(engine, name, role, password, expected):
    with pytest.raises(users.UserError, match=expected):
        users.add(engine, name, role, password, actor="test")
    assert users.list_users(engine) == [] and audit.entries(engine) == []


def test_names_are_unique(engine):
    users.add(engine, "olga", users.VIEWER, PASSWORD, actor="test")
    with pytest.raises(users.UserError, match="exists already"):
        users.add(engine, "olga", users.ADMIN, PASSWORD, actor="test")


def test_a_disabled_user_stays_listed_cannot_log_in_and_the_change_is_audited(engine):
    users.add(engine, "vera", users.VIEWER, PASSWORD, actor="test")
    assert users.disable(engine, "vera", actor="cli:root").disabled
    assert [(u.name, u.disabled) for u in users.list_users(engine)] == [("vera", True)]
    assert users.verify(engine, "vera", PASSWORD) is None
    assert [e.action for e in audit.entries(engine)] == ["user.disable", "user.add"]
    with pytest.raises(users.UserError, match="disabled already"):
        users.disable(engine, "vera", actor="test")
    with pytest.raises(users.UserError, match="no user"):
        users.disable(engine, "nobody", actor="test")


# --- the commands -----------------------------------------------------------------------------


def test_users_add_list_disable_from_the_command_line(tmp_path):
    env = {"CITYBRAIN_VAR_DIR": str(tmp_path / "var")}
    runner = CliRunner()
    added = runner.invoke(
        app, ["users", "add", "olga", "--role", "operator", "--json"], input=PASSWORD + "\n", env=env
    )
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout) == {"name": "olga", "role": "operator"}
    listed = json.loads(runner.invoke(app, ["users", "list", "--json"], env=env).stdout)
    assert [(u["name"], u["role"], u["disabled"]) for u in listed["users"]] == [("olga", "operator", False)]
    assert runner.invoke(app, ["users", "disable", "olga"], env=env).exit_code == 0
    engine = database.open_database(Settings(var_dir=tmp_path / "var"))
    assert users.verify(engine, "olga", PASSWORD) is None
    actors = {e.actor for e in audit.entries(engine)}
    assert actors == {f"cli:{getpass.getuser()}"}


@pytest.mark.parametrize(
    "args, stdin, expected",
    [
        (
            ["users", "add", "olga", "--role", "boss"],
            PASSWORD,
            "--role boss: expected one of viewer, operator, admin",
        ),
        (["users", "add", "olga", "--role", "viewer"], "", "no password on standard input"),
        (["users", "add", "olga", "--role", "viewer"], "short", "at least 12 characters"),
        (["users", "disable", "nobody"], "", "no user 'nobody'"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_status_2(tmp_path: Path, args, stdin, expected):
    env = {**os.environ, "CITYBRAIN_VAR_DIR": str(tmp_path / "var"), "COLUMNS": "200"}
    done = subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and expected in done.stderr
