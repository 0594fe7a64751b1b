"""Output for people (rich, on stdout) or machines (``--json``: one JSON document on stdout).

Diagnostics and progress go to stderr, so stdout stays parseable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.console import Console
    from rich.table import Table

    from core.settings import Settings

M = TypeVar("M", bound="BaseModel")


class _LazyConsole:
    """A rich Console made on first use: ``cap --help`` and ``--json`` runs never import rich."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


out: Console = _LazyConsole(highlight=False, soft_wrap=True)  # type: ignore[assignment]
err: Console = _LazyConsole(stderr=True, highlight=False, soft_wrap=True)  # type: ignore[assignment]

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def now() -> datetime:
    return datetime.now(UTC)


def settings() -> Settings:
    from core.settings import Settings  # lazy: pydantic is not needed to print help

    return Settings.from_env()


def read_input(path: Path) -> bytes:
    """The bytes of an input file; a missing file or a directory is a clear input error."""
    from core.errors import InvalidInputError

    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidInputError("file not found", file=str(path)) from None
    except IsADirectoryError:
        raise InvalidInputError("is a directory, expected a file", file=str(path)) from None


def load_input(path: Path, model: type[M], what: str) -> M:
    """A JSON document of type ``model`` from ``path``; bad input names the file and field."""
    from core.documents import parse_model

    return parse_model(model, read_input(path), source=str(path), what=f"{what} file")


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):  # a pydantic model
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def emit(as_json: bool, data: Any, human: Callable[[], None]) -> None:
    """Print ``data`` as JSON, or call ``human`` to render it for a person."""
    if as_json:
        print(json.dumps(_plain(data), ensure_ascii=False, indent=2))
    else:
        human()


def table(*headers: str, whole: tuple[str, ...] = (), **options: Any) -> Table:
    """A table that never cuts a cell: columns in ``whole`` (ids, hashes a user copies) never wrap,
    the others wrap (fold) instead of ending in an ellipsis."""
    from rich.table import Table

    made = Table(**options)
    for header in headers:
        made.add_column(header, no_wrap=header in whole, overflow="fold")
    return made


def kv_table(title: str, rows: dict[str, Any]) -> Table:
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in rows.items():
        table.add_row(key, str(value))
    return table


STATUS_STYLE = {
    "ok": "green",
    "warn": "yellow",
    "fail": "bold red",
    "OK": "green",
    "WARN": "yellow",
    "FAIL": "bold red",
}


def styled(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"
