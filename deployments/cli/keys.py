"""``cap keys``: generate, list and show signing keys (private keys never printed)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from core import service
from deployments.cli.output import JsonFlag, emit, kv_table, now, out, settings

app = typer.Typer(help="Signing keys (Ed25519, cap-key.v1).", no_args_is_help=True)


@app.command("keygen")
def keygen(
    owner: Annotated[str | None, typer.Option(help="Key owner (default CAP_KEY_OWNER or 'Company').")] = None,
    valid_days: Annotated[int, typer.Option(min=1, help="Validity in days.")] = 730,
    as_json: JsonFlag = False,
) -> None:
    """Generate a key pair: <kid>.pem (0600) and <kid>.json in the key directory."""
    meta = service.keygen(settings(), now=now(), owner=owner, valid_days=valid_days)
    emit(as_json, meta, lambda: out.print(kv_table("key generated", meta.model_dump(mode="json"))))


@app.command("list")
def list_keys(as_json: JsonFlag = False) -> None:
    """List key metadata."""
    keys = service.list_keys(settings())

    def human() -> None:
        table = Table("kid", "owner", "status", "valid_to")
        for k in keys:
            table.add_row(k.kid, k.owner, k.status.value, k.valid_to)
        out.print(table)

    emit(as_json, keys, human)


@app.command("show")
def show(kid: str, as_json: JsonFlag = False) -> None:
    """Show one key's public metadata."""
    meta = service.show_key(settings(), kid)
    emit(as_json, meta, lambda: out.print(kv_table(f"key {kid}", meta.model_dump(mode="json"))))
