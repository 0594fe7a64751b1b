"""The seam between the API and Prefect: trigger a deployment, read a flow run.

:class:`PrefectFlows` talks to the Prefect API named by ``PREFECT_API_URL`` (``cap serve`` exports it to the
API workers) and never starts a temporary server. Every Prefect or transport failure leaves as
:class:`FlowsUnavailableError` (HTTP 503); an unknown run is :class:`NotFoundError`. Tests pass a fake with
the same two methods.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol
from uuid import UUID

import httpx
from pydantic import BaseModel, ConfigDict

from core.errors import CapError, NotFoundError


class FlowsUnavailableError(CapError):
    """Prefect is not configured, unreachable, or lacks the deployment (HTTP 503)."""

    code = "prefect_unavailable"


class FlowRunInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    flow_run_id: str
    name: str | None = None
    deployment: str | None = None
    state_type: str | None = None
    state_name: str | None = None
    created: str | None = None
    start_time: str | None = None
    end_time: str | None = None


class FlowGateway(Protocol):
    async def trigger(self, deployment: str, parameters: dict[str, Any]) -> FlowRunInfo: ...

    async def read_run(self, run_id: UUID) -> FlowRunInfo: ...


def _info(run: Any, deployment: str | None = None) -> FlowRunInfo:
    state = run.state

    def text(value: Any) -> str | None:
        return None if value is None else str(value)

    return FlowRunInfo(
        flow_run_id=str(run.id),
        name=run.name,
        deployment=deployment,
        state_type=text(state.type.value) if state else None,
        state_name=text(state.name if state else None),
        created=text(run.created),
        start_time=text(run.start_time),
        end_time=text(run.end_time),
    )


class PrefectFlows:
    """:class:`FlowGateway` over a Prefect server's HTTP API."""

    def __init__(self, api_url: str | None, *, timeout: float = 5.0) -> None:
        self.api_url, self.timeout = api_url, timeout

    async def trigger(self, deployment: str, parameters: dict[str, Any]) -> FlowRunInfo:
        from prefect.deployments import arun_deployment  # heavy import, only when an admin route runs

        async def call(client: Any) -> FlowRunInfo:
            run = await arun_deployment(
                deployment, client=client, parameters=parameters, timeout=0, as_subflow=False
            )
            return _info(run, deployment)

        return await self._with_client(call, what=f"deployment {deployment}", deployment=deployment)

    async def read_run(self, run_id: UUID) -> FlowRunInfo:
        async def call(client: Any) -> FlowRunInfo:
            return _info(await client.read_flow_run(run_id))

        return await self._with_client(call, what=f"flow run {run_id}")

    async def _with_client(self, call: Any, *, what: str, deployment: str | None = None) -> FlowRunInfo:
        if not self.api_url:
            raise FlowsUnavailableError("no Prefect API configured (PREFECT_API_URL is unset)")
        from prefect.client.orchestration import PrefectClient
        from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

        try:
            async with asyncio.timeout(self.timeout), PrefectClient(self.api_url) as client:
                return await call(client)
        except ObjectNotFound as exc:
            if deployment is None:
                raise NotFoundError(f"{what} not found", code="flow_run_not_found") from exc
            raise FlowsUnavailableError(
                f"{what} is not registered with Prefect", deployment=deployment
            ) from exc
        except (TimeoutError, httpx.HTTPError, PrefectHTTPStatusError, OSError, RuntimeError) as exc:
            raise FlowsUnavailableError(
                f"Prefect API unreachable: {type(exc).__name__}", api_url=self.api_url
            ) from exc
