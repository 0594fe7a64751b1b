"""``cap sap``: ingest from SAP S/4HANA (OData) into a proof, and the local SAP-like mock for the pilot.

``ingest`` calls :func:`core.sap.pipeline.ingest` directly (no Prefect needed); the ``sap-ingest`` flow
runs the same steps as tasks. Output holds counts, roots, hashes and verdicts only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.errors import InvalidInputError
from core.modes import CheckStatus, EnforcementMode
from core.sap.pipeline import IngestResult, load_ingest_config
from core.sap.pipeline import ingest as run_ingest
from deployments.cli.output import JsonFlag, emit, err, kv_table, now, out, settings, styled
from deployments.errors import EXIT_FAIL

app = typer.Typer(
    rich_markup_mode=None,  # plain click help: never truncates option names, needs no rich.markdown
    help="SAP S/4HANA adapter: ingest → screen → commit → proof → verify.",
    no_args_is_help=True,
)

ModeOpt = Annotated[
    EnforcementMode | None, typer.Option("--enforce-mode", help="Override the config's mode.")
]


@app.command("ingest")
def ingest(
    config: Annotated[Path, typer.Option("--config", help="SAP ingest YAML (examples/sap/sap-ingest.yml).")],
    mode: ModeOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Read SAP, screen inside the adapter, commit, prove, register and verify. Exit 3 on FAIL."""
    result = run_ingest(load_ingest_config(config, mode), settings(), now())
    emit(as_json, result, lambda: _show(result))
    if result.result is CheckStatus.FAIL:
        raise typer.Exit(EXIT_FAIL)


def _show(result: IngestResult) -> None:
    rows = {
        "result": styled(result.result.value),
        "policy verdict": styled(result.verdict.value),
        "verification": f"{styled(result.verification.result.value)} ({result.verification.via})",
        "mode": result.mode.value,
        "company": result.company_id,
        "suppliers": f"{result.supplier_count} of {result.suppliers_seen} (tiers {result.tiers})",
        "ubos": f"{result.ubo_count} ({result.ubo_status.value})",
        "dropped": ", ".join(f"{k}={v}" for k, v in result.dropped.items()) or "none",
        "sanctions hits": f"{len(result.screening.hits)} {_refs(result)}" if result.screening.hits else "0",
        "possible matches": result.screening.possible_matches,
        "violations": ", ".join(f"{k}={v}" for k, v in result.violations.items()) or "none",
        "supplier_root": result.supplier_root,
        "ubo_root": result.ubo_root,
        "company_root": result.company_root,
        "registry": f"{result.registry_id} ({'accepted' if result.accepted else 'not accepted'})",
        "drift": f"score {result.drift.score} ({result.drift.level}): {result.drift.items}"
        if result.drift
        else "no baseline",
    }
    out.print(kv_table("sap ingest", rows))


def _refs(result: IngestResult) -> str:
    return ", ".join(sorted({ref for hit in result.screening.hits for ref in hit.refs}))


@app.command("mock-server")
def mock_server(
    port: Annotated[int, typer.Option(help="Port on --host.")] = 8765,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    odata_version: Annotated[int, typer.Option("--odata-version", min=2, max=4, help="2 or 4.")] = 2,
    data: Annotated[Path | None, typer.Option("--data", help="Dataset JSON (cap sap mock-data).")] = None,
    suppliers: Annotated[int, typer.Option(help="Generated suppliers (without --data).")] = 200,
    orders: Annotated[int, typer.Option(help="Generated purchase orders (without --data).")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the generated dataset.")] = 0,
) -> None:
    """Serve a local SAP-like OData server (API_BUSINESS_PARTNER, purchase orders) until Ctrl-C.

    Without ``--data`` it serves a generated dataset dated today (orders inside the look-back window).
    """
    if odata_version not in (2, 4):
        raise InvalidInputError("--odata-version must be 2 or 4", field="odata_version", found=odata_version)
    from deployments.sap_mock import serve  # uvicorn/fastapi: only for this command
    from deployments.sap_mock_data import generate_dataset
    from deployments.sap_pilot import load_dataset

    today = now().date()
    dataset = (
        load_dataset(data) if data is not None else generate_dataset(suppliers, orders, seed, as_of=today)
    )
    err.print(f"SAP mock (OData v{odata_version}) on http://{host}:{port}  — Ctrl-C to stop")
    serve(host, port, odata_version=odata_version, dataset=dataset)


@app.command("mock-data")
def mock_data(
    out_path: Annotated[Path, typer.Option("--out", help="Dataset JSON to write.")],
    source: Annotated[Path | None, typer.Option("--from", help="Start from this dataset file.")] = None,
    suppliers: Annotated[int, typer.Option(help="Generated suppliers (without --from).")] = 40,
    orders: Annotated[int, typer.Option(help="Generated purchase orders (without --from).")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the generated dataset.")] = 0,
    sanctioned: Annotated[
        bool, typer.Option(help="Add supplier 2999001 'Trade Center Hesa' (an OFAC alias).")
    ] = False,
    set_country: Annotated[
        list[str] | None, typer.Option(help="SUPPLIER=CC: move a supplier (repeatable).")
    ] = None,
) -> None:
    """Write a dataset for ``cap sap mock-server --data`` (generated data is dated today)."""
    from deployments import sap_pilot
    from deployments.sap_mock_data import generate_dataset

    today = now().date()
    dataset = (
        sap_pilot.load_dataset(source) if source else generate_dataset(suppliers, orders, seed, as_of=today)
    )
    if sanctioned:
        sap_pilot.add_supplier(
            dataset, sap_pilot.SANCTIONED_DEMO_NUMBER, sap_pilot.SANCTIONED_DEMO_NAME, "DE", as_of=today
        )
    for item in set_country or []:
        number, sep, country = item.partition("=")
        if not sep or len(country) != 2:
            raise InvalidInputError(f"--set-country {item!r}", field="set_country", expected="SUPPLIER=CC")
        sap_pilot.set_supplier_country(dataset, number, country, as_of=today)
    target = sap_pilot.save_dataset(out_path, dataset)
    err.print(
        f"wrote {target}: {len(dataset.suppliers)} suppliers, {len(dataset.purchase_orders)} purchase orders"
    )
