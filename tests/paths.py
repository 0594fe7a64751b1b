"""Where tests find the shared material: ``../shared`` beside the repository (``CAP_SHARED_DIR`` overrides).

A missing file fails the test with a clear message; it never skips, since a skipped test proves nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CAP_SHARED_DIR") or REPO.parent / "shared")
FIXTURES = SHARED / "fixtures"
REFERENCE = SHARED / "reference"


def shared(*parts: str) -> Path:
    """A file under the shared directory; fails the test if it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests need ../shared beside the repository (or CAP_SHARED_DIR)")
    return path
