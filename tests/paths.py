"""Where tests find the shared material: ``tests/shared`` in the repository (``CAP_SHARED_DIR`` overrides).

A missing file fails the test with a clear message; it never skips, since a skipped test proves nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CAP_SHARED_DIR") or REPO / "tests" / "shared")
FIXTURES = SHARED / "fixtures"
REFERENCE = SHARED / "reference"


def shared(*parts: str) -> Path:
    """A file under the shared directory; fails the test if it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests read tests/shared (or the copy CAP_SHARED_DIR names)")
    return path
