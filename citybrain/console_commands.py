"""``citybrain console`` and ``citybrain users``: serve the operator console, manage who may use it."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer
from rich.table import Table

from citybrain.terminal import JsonFlag, UsageProblem, emit, settings

users_app = typer.Typer(help="The console's users: viewers, operators and admins.")


def _actor() -> str:
    """Who the audit log names for a change made here: the account running the command."""
    return f"cli:{getpass.getuser()}"


def _password() -> str:
    """Prompted twice on a terminal; otherwise the first line of standard input (for scripts)."""
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if first != getpass.getpass("again: "):
            raise UsageProblem("the two passwords differ")
        return first
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise UsageProblem("no password on standard input (one line expected)")
    return line


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Login name: letters, digits, '.', '_' or '-'.")],
    role: Annotated[str, typer.Option(help="viewer, operator or admin.")],
    as_json: JsonFlag = False,
) -> None:
    """Add a user; the password is prompted twice, or read from standard input when piped."""
    from console import users
    from core.database import open_database

    if role not in users.ROLES:
        raise UsageProblem(f"--role {role}: expected one of {', '.join(users.ROLES)}")
    user = users.add(open_database(settings()), name, role, _password(), actor=_actor())
    emit(as_json, {"name": user.name, "role": user.role}, f"added {user.role} [bold]{user.name}[/]")


@users_app.command("list")
def users_list(as_json: JsonFlag = False) -> None:
    """Every user with their role, whether disabled, and when added."""
    from console import users
    from core.database import open_database

    found = users.list_users(open_database(settings()))
    rows = [
        {"name": u.name, "role": u.role, "disabled": u.disabled, "created_at": u.created_at.isoformat()}
        for u in found
    ]
    table = Table("name", "role", "disabled", "created")
    for row in rows:
        table.add_row(row["name"], row["role"], "yes" if row["disabled"] else "", row["created_at"])
    emit(as_json, {"users": rows}, table)


@users_app.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument(help="The user to disable.")], as_json: JsonFlag = False
) -> None:
    """Disable a user: no new login, and their open sessions stop working. Users are never deleted."""
    from console import users
    from core.database import open_database

    user = users.disable(open_database(settings()), name, actor=_actor())
    emit(as_json, {"name": user.name, "disabled": user.disabled}, f"disabled [bold]{user.name}[/]")


def console(
    host: Annotated[str, typer.Option(help="Address to listen on; behind a TLS proxy in production.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Server processes sharing the port; one per core serves most.")
    ] = 1,
) -> None:
    """Serve the operator console's API until interrupted."""
    import uvicorn

    from console.app import create_app

    # Open event streams (GET /api/events) would otherwise hold a stop for up to their 300 s.
    options = {"host": host, "port": port, "server_header": False, "timeout_graceful_shutdown": 5}
    if workers == 1:
        uvicorn.run(create_app(settings()), **options)
    else:  # each process builds the app from the same environment (checked here first)
        settings()
        uvicorn.run("console.app:from_environment", factory=True, workers=workers, **options)
