"""The deployments ``cap serve`` applies: each default in ``prefect.yaml`` fits the flow's parameter schema.

The Prefect server refuses a deployment whose defaults do not (HTTP 422), and one refused deployment stops the
whole runner, so `cap serve` would not start at all.
"""

from __future__ import annotations

import asyncio

from prefect.utilities.schema_tools.validation import validate

from deployments.runner import project_deployments
from tests.paths import REPO


def test_every_deployment_default_fits_its_form():
    deployments = asyncio.run(project_deployments(REPO))
    assert {"rotate-signing-key", "zk-prove"} <= {d.name for d in deployments}
    for d in deployments:
        errors = validate(d.parameters, d._parameter_openapi_schema.model_dump(), ignore_required=True)
        assert not errors, f"{d.name}: {[e.message for e in errors]}"
