"""``cap serve`` (API + Prefect server + served deployments, supervised; or ``--replication-only``) and
``cap openapi``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from core import service
from core.dev_issuer import DevIssuer
from core.settings import Settings
from core.store import prepare_stores, require_files
from deployments.cli.output import err, now, settings

OPENAPI_PATH = Path("openapi/openapi.yaml")


def prepare_data_dir(cfg: Settings) -> None:
    """A fresh data directory gets a signing key + keyring, the stores and (dev only) the token issuer."""
    from deployments.api.config import ApiConfig

    service.ensure_signer(cfg, now())
    prepare_stores(cfg)
    config = ApiConfig.from_env(cfg)  # no JWKS configured: the dev issuer, refused outside CAP_ENV=dev
    dev = DevIssuer(cfg.layout.dev_issuer_dir)
    if config.jwks_file == dev.jwks_path:
        dev.ensure()


def serve(
    host: Annotated[str, typer.Option(help="API bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 2,
    no_prefect: Annotated[
        bool, typer.Option("--no-prefect", help="API only: no Prefect server or runner.")
    ] = False,
    prefect_port: Annotated[int, typer.Option(help="Port of the local Prefect server (UI).")] = 4200,
    replication_only: Annotated[
        bool,
        typer.Option(
            "--replication-only",
            help="Only Litestream replication, state snapshots and the lag probe (CAP_REPLICA_URL): the one "
            "replicating process of a data volume shared by API pods that run without CAP_REPLICA_URL.",
        ),
    ] = False,
) -> None:
    """Run the API, a local Prefect server (unless PREFECT_API_URL is set) and the served deployments."""
    from core.backup.replica import REPLICA_ENVS
    from deployments.serve import ServeOptions, Supervisor

    cfg = settings()
    if replication_only and not any(os.environ.get(v) for v in REPLICA_ENVS):
        err.print("cap serve: error: --replication-only needs CAP_REPLICA_URL", highlight=False)
        raise typer.Exit(2)
    if replication_only:  # the databases Litestream watches exist even before an API pod made them
        require_files(cfg, "--replication-only replicates SQLite files, not the PostgreSQL state")
        prepare_stores(cfg)
    else:
        prepare_data_dir(cfg)
    options = ServeOptions(
        host=host,
        port=port,
        workers=workers,
        prefect=not (no_prefect or replication_only),
        prefect_port=prefect_port,
        api=not replication_only,
    )
    code = Supervisor(cfg, options, say=lambda text: err.print(f"cap serve: {text}", highlight=False)).run()
    raise typer.Exit(code)


def openapi(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the document.")] = OPENAPI_PATH,
) -> None:
    """Write the API's OpenAPI document (YAML)."""
    from deployments.api.openapi import write_openapi

    write_openapi(out)
    err.print(f"openapi → {out}")
