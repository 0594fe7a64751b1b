"""Test-vector generators: each ``gen_<area>.py`` exposes ``vectors() -> dict[str, object]``.

Keys are paths relative to ``tests/vectors`` (``"<area>/<scenario>.json"``); values are JSON-ready
objects built from fixed seeds and fixed clocks, so every run gives the same bytes.
``python -m tests.vectorgen`` rewrites the files; ``tests/unit/test_vectors_fresh.py`` regenerates
them in memory and byte-compares with what is committed.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path
from typing import Any

VECTORS_DIR = Path(__file__).resolve().parent.parent / "vectors"


def render(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


def generate_all() -> dict[str, bytes]:
    """Every vector file's path and bytes, from every ``gen_*`` module."""
    out: dict[str, bytes] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("gen_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for rel, obj in module.vectors().items():
            if rel in out:
                raise ValueError(f"vector {rel} produced twice")
            out[rel] = render(obj)
    return out


def write_all() -> list[str]:
    written = []
    for rel, data in generate_all().items():
        path = VECTORS_DIR / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
            written.append(rel)
    return written
