"""The ``cap`` command line. One ``except`` maps every error to its exit code (docs/cli.md).

Nobody sees a stack trace: CAP errors print their diagnostics, anything unexpected prints one
line (set ``CAP_DEBUG=1`` to re-raise for debugging).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from typing import Any, NamedTuple

# CAP uses no pydantic plugins; looking for them reads every installed distribution's entry points (30-40 ms
# of each start-up, before the first model exists). An operator who does use a plugin sets the variable.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import click
import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from core.errors import CapError
from deployments.cli.output import err
from deployments.errors import EXIT_INPUT, EXIT_INTERNAL, HINTS, exit_code_for


class Lazy(NamedTuple):
    """A command (or sub-app when ``group``) imported only when it runs or shows its own help."""

    module: str
    attr: str
    help: str  # the short help ``cap --help`` lists (a test keeps it equal to the command's own)
    group: bool = False


COMMANDS: dict[str, Lazy] = {
    "commit": Lazy(
        "lifecycle", "commit", "Commit to supplier and UBO lists: roots and counts, the leaves stay with you."
    ),
    "verify": Lazy(
        "verify",
        "verify",
        "Verify a proof: signature, key status, hashes, roots, trusted lists, every rule, sanctions "
        "evidence.",
    ),
    "screen": Lazy(
        "screen",
        "screen",
        "Which rows match or nearly match which list entries; local only, never part of a proof.",
    ),
    "demo": Lazy("demo", "demo", "Run the whole lifecycle on example data and print each step."),
    "serve": Lazy(
        "serve",
        "serve",
        "Run the API, a local Prefect server (unless PREFECT_API_URL is set) and the served deployments.",
    ),
    "openapi": Lazy("serve", "openapi", "Write the API's OpenAPI document (YAML)."),
    "token": Lazy("token", "token", "Mint a token for the local development issuer (created on first use)."),
    "smoke": Lazy("smoke", "smoke", "Run the deployment smoke checks."),
    "backup": Lazy("backup", "backup", "Back up the data dir (never private keys); prints the backup id."),
    "restore": Lazy(
        "backup",
        "restore",
        "Restore a backup, or a replica's point in time, in eight checked steps with an atomic swap.",
    ),
    "drift": Lazy(
        "drift",
        "drift",
        "Score the drift of --current against --baseline (policy, roots, time, signing key).",
    ),
    "keys": Lazy("keys", "app", "Signing keys (Ed25519, cap-key.v1).", group=True),
    "lists": Lazy("lifecycle", "lists_app", "Sanctions and high-risk lists.", group=True),
    "policy": Lazy("lifecycle", "policy_app", "Policies: lint and compile to IR.", group=True),
    "manifest": Lazy("lifecycle", "manifest_app", "Manifests.", group=True),
    "proof": Lazy("lifecycle", "proof_app", "Proofs.", group=True),
    "backups": Lazy("backup", "backups_app", "Stored backups: list them, apply retention.", group=True),
    "sap": Lazy("sap", "app", "SAP S/4HANA adapter: ingest → screen → commit → proof → verify.", group=True),
    "zk": Lazy(
        "zk", "app", "Zero-knowledge screening: circuits and trusted setup (cap-proof.v3).", group=True
    ),
}


def load_command(name: str) -> click.Command:
    """Import the module of ``name`` and build its click command (a group for a sub-app)."""
    spec = COMMANDS[name]
    target: Any = getattr(importlib.import_module(f"deployments.cli.{spec.module}"), spec.attr)
    if spec.group:
        command: click.Command = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False, rich_markup_mode=None)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """``cap``: lists its commands from :data:`COMMANDS` and imports one only to run it (or for its own
    ``--help``), so ``cap --help`` starts without the domain and ``cap verify`` without the server parts."""

    _listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        if self._listing:  # the help table only needs the name and the short help
            return click.Command(cmd_name, short_help=COMMANDS[cmd_name].help)
        if cmd_name not in self.commands:
            self.commands[cmd_name] = load_command(cmd_name)
        return self.commands[cmd_name]

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    rich_markup_mode=None,  # plain click help: never truncates option names, needs no rich.markdown
    name="cap",
    cls=LazyGroup,
    help="CAP Verifier: LkSG compliance proofs without disclosing supplier lists.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """CAP Verifier: LkSG compliance proofs without disclosing supplier lists."""


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape  # lazy, like the consoles

    return rich_escape(text)


def _report_error(exc: CapError) -> None:
    if "--json" in sys.argv:
        print(json.dumps(exc.to_dict(), ensure_ascii=False, default=str), file=sys.stderr)
    err.print(f"[bold red]error[/] \\[{exc.code}]: {escape(exc.diagnostics())}", highlight=False)
    if exc.code in HINTS:
        err.print(f"hint: {escape(HINTS[exc.code])}", highlight=False)


def _show_progress_logs() -> None:
    """Warnings of the domain's loggers (``cap.*``: retries, waits) go to stderr as one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger = logging.getLogger("cap")
    if not logger.handlers:
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    _show_progress_logs()
    try:
        rc = app(args=argv, standalone_mode=False)  # click returns an Exit's code here instead of raising
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except TyperException as exc:  # usage errors: bad or missing options and arguments
        err.print(f"[bold red]usage error[/]: {escape(exc.format_message())} (see --help)")
        sys.exit(EXIT_INPUT)
    except CapError as exc:
        _report_error(exc)
        sys.exit(exit_code_for(exc))
    except Exception as exc:  # the CLI boundary: one line, never a trace
        if os.environ.get("CAP_DEBUG"):
            raise
        err.print(
            f"[bold red]internal error[/]: {type(exc).__name__}: {escape(str(exc))} (CAP_DEBUG=1 for details)"
        )
        sys.exit(EXIT_INTERNAL)
    sys.exit(rc if isinstance(rc, int) else 0)
