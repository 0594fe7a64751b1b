"""Write the mutation scores (``build/mutation/*.json`` from ``scripts/mutation.py``) into docs/testing.md.

The part between the two MUTATION markers of docs/testing.md is generated: a table with one row per module
(mutants, killed, survivors, score, accepted equivalents, score counting them, the baseline score if
``build/mutation-before/`` holds one) and, per module, every mutant that was not killed with its diff and
either the reason it is accepted as equivalent (``scripts/mutation_equivalents.json``: mutant name ->
reason) or "not accepted". Everything outside the markers is left as written. A module with no result in
``--results`` keeps the row and survivor list it already has in the document (measured earlier, on another
machine or in another run directory), so measuring one module never erases the others.

    python scripts/mutation_table.py [--results build/mutation] [--before build/mutation-before]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "testing.md"
EQUIVALENTS = REPO / "scripts" / "mutation_equivalents.json"
BEGIN = "<!-- MUTATION TABLE BEGIN (scripts/mutation_table.py writes this part) -->"
END = "<!-- MUTATION TABLE END -->"


def load(directory: Path) -> dict[str, dict[str, object]]:
    out = {}
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text("utf-8"))
        out[str(data["module"])] = data
    return out


def _partial(result: dict, all_mutants: int) -> str:
    sample = result.get("sample")
    if sample:
        return f" sampled of {all_mutants} (mutants numbered `{sample}`)"
    return f" checked of {all_mutants} (partial run)"


def previous(section: str) -> tuple[dict[str, str], dict[str, str]]:
    """The rows and survivor blocks of an already generated section, by module."""
    rows, blocks, current = {}, {}, None
    for line in section.splitlines(keepends=True):
        if line.startswith("| `"):
            rows[line.split("`")[1]] = line.rstrip("\n")
        elif line.startswith("#### `"):
            current = line.split("`")[1]
            blocks[current] = "\n" + line
        elif current is not None:
            blocks[current] += line
    return rows, {m: b.rstrip("\n") + "\n" for m, b in blocks.items()}


def render(
    results: dict[str, dict],
    before: dict[str, dict],
    equivalents: dict[str, str],
    kept: tuple[dict[str, str], dict[str, str]] = ({}, {}),
) -> str:
    from mutation import TESTS  # the mapping decides the row order

    lines = [
        "| module | mutants | killed | not killed | score | accepted equivalent | score without them "
        "| before | tests |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    details = []
    old_rows, old_blocks = kept
    measured = set(results) | set(old_rows)
    for module in [m for m in TESTS if m in measured] + sorted(measured - set(TESTS)):
        if module not in results:
            lines.append(old_rows[module])
            if module in old_blocks:
                details.append(old_blocks[module])
            continue
        r = results[module]
        rechecked = dict(r.get("rechecked", {}))
        late = [n for n, v in rechecked.items() if v == "killed"]
        alive = [a for a in r["alive"] if a["name"] not in late]
        accepted = [a for a in alive if a["name"] in equivalents]
        unchecked = int(r.get("not_checked", 0))
        total, killed = int(r["total"]) - unchecked, int(r["killed"]) + len(late)
        score = f"{100.0 * killed / total:.1f}" if total else "100.0"
        net_total = total - len(accepted)
        net = f"{100.0 * killed / net_total:.1f} %" if net_total else "100.0 %"
        was = before.get(module)
        was_text = f"{was['score']} %" if was else "—"
        tests = ", ".join(Path(t).name for t in r["tests"])
        killed_text = f"{killed} ({len(late)} on recheck)" if late else str(killed)
        lines.append(
            f"| `{module}` | {total}{_partial(r, total + unchecked) if unchecked else ''} "
            f"| {killed_text} | {len(alive)} | {score} % | {len(accepted)} | {net} "
            f"| {was_text} | {tests} |"
        )
        if alive:
            details.append(f"\n#### `{module}` — {len(alive)} not killed\n")
            for a in alive:
                reason = equivalents.get(a["name"])
                verdict = f"accepted: {reason}" if reason else "**not accepted** (needs a test or a fix)"
                details.append(f"- `{a['name']}` ({a['status']}) — {verdict}\n")
                details.append(
                    "  ```diff\n" + "\n".join("  " + x for x in str(a["diff"]).splitlines()) + "\n  ```\n"
                )
    return "\n".join(lines) + "\n" + "".join(details)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", type=Path, default=REPO / "build" / "mutation")
    parser.add_argument("--before", type=Path, default=REPO / "build" / "mutation-before")
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    results = load(args.results)
    if not results:
        print(f"no results in {args.results}; run `make mutation` first", file=sys.stderr)
        return 1
    before = load(args.before) if args.before.is_dir() else {}
    equivalents = json.loads(EQUIVALENTS.read_text("utf-8")) if EQUIVALENTS.exists() else {}
    text = args.doc.read_text("utf-8")
    if BEGIN not in text or END not in text:
        print(f"{args.doc} lacks the markers {BEGIN!r} … {END!r}", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    section, tail = rest.split(END, 1)
    kept = previous(section)
    table = render(results, before, equivalents, kept)
    args.doc.write_text(head + BEGIN + "\n" + table + END + tail, "utf-8")
    unchanged = sorted(set(kept[0]) - set(results))
    print(f"wrote {len(results)} modules into {args.doc}; kept as written: {', '.join(unchanged) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
