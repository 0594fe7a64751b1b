"""The ``cap`` command line. One ``except`` maps every error to its exit code (docs/cli.md).

Nobody sees a stack trace: CAP errors print their diagnostics, anything unexpected prints one
line (set ``CAP_DEBUG=1`` to re-raise for debugging).
"""

from __future__ import annotations

import json
import os
import sys

import typer
from rich.markup import escape
from typer.exceptions import TyperException

from core.errors import CapError
from deployments.cli import keys, lifecycle, screen
from deployments.cli.output import err
from deployments.errors import EXIT_INPUT, EXIT_INTERNAL, exit_code_for

app = typer.Typer(
    name="cap",
    help="CAP Verifier: LkSG compliance proofs without disclosing supplier lists.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(keys.app, name="keys")
app.add_typer(lifecycle.lists_app, name="lists")
app.add_typer(lifecycle.policy_app, name="policy")
app.add_typer(lifecycle.manifest_app, name="manifest")
app.add_typer(lifecycle.proof_app, name="proof")
app.command("commit")(lifecycle.commit)
app.command("verify")(lifecycle.verify)
app.command("screen")(screen.screen)


def _register_optional() -> None:
    """Commands whose modules pull heavier dependencies register themselves here."""
    from deployments.cli import demo, serve, token

    app.command("demo")(demo.demo)
    app.command("serve")(serve.serve)
    app.command("openapi")(serve.openapi)
    app.command("token")(token.token)
    from deployments.cli import smoke

    app.command("smoke")(smoke.smoke)
    from deployments.cli import backup

    app.command("backup")(backup.backup)
    app.add_typer(backup.backups_app, name="backups")
    app.command("restore")(backup.restore)
    from deployments.cli import sap

    app.add_typer(sap.app, name="sap")
    from deployments.cli import drift

    app.command("drift")(drift.drift)
    from deployments.cli import zk

    app.add_typer(zk.app, name="zk")


_register_optional()


def _report_error(exc: CapError) -> None:
    if "--json" in sys.argv:
        print(json.dumps(exc.to_dict(), ensure_ascii=False, default=str), file=sys.stderr)
    err.print(f"[bold red]error[/] \\[{exc.code}]: {escape(exc.diagnostics())}", highlight=False)


def main(argv: list[str] | None = None) -> None:
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
