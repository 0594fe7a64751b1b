"""Run the real ``cap`` entry point in a subprocess with its own data and build directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.paths import REPO

EXAMPLES = REPO / "examples"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


class Cap:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {
            **os.environ,
            "CAP_DATA_DIR": str(root / "var"),
            "CAP_BUILD_DIR": str(root / "build"),
            "CAP_SUBJECT": "LEI-TEST-0001",
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
        self.env.pop("CAP_DEBUG", None)

    def __call__(self, *args: str | Path, input: str | None = None) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "deployments.cli", *map(str, args)],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            input=input,
            timeout=120,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        return path


@pytest.fixture
def cap(tmp_path) -> Cap:
    return Cap(tmp_path)
