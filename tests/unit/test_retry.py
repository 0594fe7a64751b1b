"""The one Prefect retry condition: a CapError marked ``transient`` is retried, nothing else is."""

from __future__ import annotations

import pytest

from core.errors import IntegrityError, RotationError, StorageError
from core.lists_refresh import ListFetchError
from core.prover import PolicyFailedError
from core.sap.odata import SapError
from core.sap.remote_verify import RemoteVerifyError
from tasks.retry import retry_transient


class _State:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def result(self) -> None:
        raise self.exc


class _Done:
    def result(self) -> int:
        return 1


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        pytest.param(StorageError("s3 down", transient=True), True, id="storage_transient"),
        pytest.param(StorageError("denied"), False, id="storage_permanent"),
        pytest.param(SapError("HTTP 503", transient=True), True, id="sap_transient"),
        pytest.param(SapError("bad payload"), False, id="sap_permanent"),
        pytest.param(RemoteVerifyError("HTTP 502", transient=True), True, id="verify_api_transient"),
        pytest.param(RemoteVerifyError("HTTP 401"), False, id="verify_api_refusal"),
        pytest.param(ListFetchError("HTTP 503", transient=True), True, id="list_download_transient"),
        pytest.param(ListFetchError("HTTP 404"), False, id="list_download_permanent"),
        pytest.param(IntegrityError("flipped"), False, id="integrity"),
        pytest.param(RotationError("illegal", code="phase_skipped"), False, id="rotation"),
        pytest.param(PolicyFailedError("FAIL"), False, id="verdicts_are_results"),
        pytest.param(ValueError("bug"), False, id="not_a_cap_error"),
    ],
)
def test_only_transient_cap_errors_are_retried(exc, retry):
    assert retry_transient(None, None, _State(exc)) is retry


def test_a_state_without_an_error_is_not_retried():
    assert retry_transient(None, None, _Done()) is False
