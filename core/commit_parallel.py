"""Supplier leaves for large CSV files on all cores (the 1 M-row → root path of SPEC §7).

A file without quote characters has one record per line, so it can be cut at line boundaries and
each part parsed and hashed in its own process with the same validation and the same line numbers
as :func:`core.commitments.parse_suppliers`. Anything else takes the sequential path.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from core.commitments import parse_suppliers, supplier_leaf
from core.errors import InvalidInputError

PARALLEL_MIN_BYTES = 8 * 1024 * 1024


def _leaves_of_part(text: str, header: str, first_line: int, source: str) -> bytes:
    """Validate and hash one part; error lines are shifted to the file's own numbering."""
    try:
        suppliers = parse_suppliers(header + text, source)
    except InvalidInputError as exc:
        if isinstance(exc.details.get("line"), int) and exc.details["line"] > 1:
            exc.details["line"] += first_line - 2
        raise
    return b"".join(supplier_leaf(s) for s in suppliers)


def _split(body: str, parts: int) -> list[tuple[str, int]]:
    """Cut ``body`` into ``parts`` runs of whole lines; each with the file line number it starts at."""
    out, start, line = [], 0, 2
    for i in range(1, parts):
        cut = body.find("\n", len(body) * i // parts)
        if cut < 0:
            break
        out.append((body[start : cut + 1], line))
        line += body.count("\n", start, cut + 1)
        start = cut + 1
    out.append((body[start:], line))
    return out


def supplier_leaves(path: Path, workers: int | None = None) -> list[bytes]:
    """The supplier leaf digests of ``path`` in file order. Raises :class:`InvalidInputError`."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"not UTF-8 text (byte {exc.start})", file=str(path)) from None
    workers = workers or min(os.cpu_count() or 1, 4)
    if len(data) < PARALLEL_MIN_BYTES or workers < 2 or '"' in text or "\r" in text:
        return [supplier_leaf(s) for s in parse_suppliers(text, str(path))]
    header, _, body = text.partition("\n")
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [
            pool.submit(_leaves_of_part, part, header + "\n", line, str(path))
            for part, line in _split(body, workers)
        ]
        joined = b"".join(f.result() for f in futures)
    return [joined[i : i + 32] for i in range(0, len(joined), 32)]
