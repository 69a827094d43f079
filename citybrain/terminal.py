"""What every ``citybrain`` command group shares: the consoles, ``--json``, settings, one-line errors."""

from __future__ import annotations

import json
import signal
import sys
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from core.errors import CitybrainError
from core.settings import Settings

out = Console()
err = Console(stderr=True)
if not out.is_terminal:  # piped or logged: rich would assume 80 columns and truncate tables
    out.width = 140

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


class UsageProblem(CitybrainError):
    """A user-facing error: printed without a traceback, exit status 2."""


def settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CITYBRAIN_{'_'.join(map(str, e['loc'])).upper() or 'PROFILE'}: {e['msg']}" for e in exc.errors()
        )
        raise UsageProblem(f"invalid settings: {problems}") from None


def emit(as_json: bool, payload: dict[str, Any], text: str | Table) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
    else:
        out.print(text)


def stop_flag() -> list[bool]:
    """A flag SIGINT and SIGTERM raise, so a loop ends between records, its offsets committed."""
    flag = [False]

    def stop(*_: object) -> None:
        flag[0] = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    return flag
