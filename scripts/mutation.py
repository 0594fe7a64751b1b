"""Mutation testing of the verification and backup checks (``make mutation``), one module at a time.

Each module's mutants run against that module's own tests only (``TESTS`` below), so a check counts as
defended only if the tests written for it notice when it breaks. mutmut 3 does the mutating; this script
gives every module its own run directory under ``build/mutation/<slug>/`` (a copy of ``core/`` and
``tests/`` plus a ``[tool.mutmut]`` section naming the module and its tests), runs
``mutmut run --max-children N`` there, and writes ``build/mutation/<slug>.json``: counts per status and,
for each mutant that was not killed, its diff. ``scripts/mutation_table.py`` renders those files into
``docs/testing.md``.

    python scripts/mutation.py                      # every module in TESTS
    python scripts/mutation.py core/merkle.py       # one module (make mutation MODULE=core/merkle.py)
    python scripts/mutation.py --list               # the module -> tests mapping

Killed = the module's tests failed (or timed out) on the mutant. Survivors (tests passed) and mutants no
selected test reaches both count against the score.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build" / "mutation"

# Module -> the test files that are meant to defend it. Kept to unit-level files that run in seconds, so the
# whole run fits in an hour on two cores; a module is defended by these, not by a slow end-to-end test.
TESTS: dict[str, list[str]] = {
    "core/merkle.py": ["tests/unit/test_merkle.py", "tests/unit/test_mutation_merkle.py"],
    "core/signing.py": ["tests/unit/test_keys.py", "tests/unit/test_mutation_signing.py"],
    "core/rules.py": [
        "tests/unit/test_rules_enforce.py",
        "tests/unit/test_mutation_rules.py",
    ],
    "core/enforce.py": [
        "tests/unit/test_rules_enforce.py",
        "tests/unit/test_enforce_metrics.py",
        "tests/unit/test_mutation_rules.py",
    ],
    "core/backup/manifest.py": [
        "tests/unit/test_backup_tamper.py",
        "tests/unit/test_backup_roundtrip.py",
        "tests/unit/test_mutation_backup_manifest.py",
    ],
    "core/backup/scan.py": [
        "tests/unit/test_backup_scan.py",
        "tests/unit/test_mutation_backup_scan.py",
        "tests/security/test_secret_scan.py",
    ],
    "core/backup/restore.py": [
        "tests/unit/test_backup_tamper.py",
        "tests/unit/test_backup_roundtrip.py",
        "tests/unit/test_backup_restore_crash.py",
        "tests/unit/test_mutation_backup_restore.py",
        "tests/unit/test_restore_state.py",
        "tests/security/test_backup_attacks.py",
        "tests/unit/test_mutation_backup_restore_2.py",
        "tests/unit/test_mutation_backup_restore_3.py",
    ],
    "core/keyring.py": [
        "tests/unit/test_keyring.py",
        "tests/unit/test_rotation.py",
        "tests/unit/test_mutation_keyring.py",
        "tests/unit/test_restore_state.py",
        "tests/unit/test_mutation_keyring_2.py",
        "tests/unit/test_mutation_keyring_3.py",
    ],
    "core/screening.py": [
        "tests/unit/test_screening.py",
        "tests/unit/test_mutation_screening.py",
        "tests/unit/test_name_keys.py",
        "tests/unit/test_mutation_screening_2.py",
        "tests/unit/test_mutation_screening_3.py",
    ],
    "core/manifest.py": [
        "tests/unit/test_proof_verify.py",
        "tests/unit/test_mutation_verify.py",
        "tests/unit/test_mutation_manifest.py",
    ],
    "core/proof.py": [
        "tests/unit/test_proof_verify.py",
        "tests/unit/test_mutation_verify.py",
        "tests/unit/test_mutation_proof.py",
    ],
    "core/context.py": [
        "tests/unit/test_proof_verify.py",
        "tests/unit/test_mutation_verify.py",
        "tests/unit/test_mutation_context.py",
    ],
    "core/verify.py": [
        "tests/unit/test_proof_verify.py",
        "tests/unit/test_vectors_proof.py",
        "tests/unit/test_enforce_metrics.py",
        "tests/unit/test_mutation_verify.py",
        "tests/unit/test_mutation_verify_2.py",
        "tests/unit/test_mutation_context.py",
    ],
    # the v3 verifier's acceptance rules and the Groth16 check, against the golden vector (no proving)
    "core/zk/evidence.py": ["tests/zk/test_evidence.py", "tests/zk/test_groth16.py"],
}

# Exhaustive tests that take seconds per run (a proof or an archive re-verified once per flipped byte, a
# restore SIGKILLed in a child process at each swap boundary): left out of mutation runs so that all modules
# fit in an hour on two cores. `make test` still runs them.
DESELECT = ("every_single_byte_flip", "one_byte_flipped_anywhere", "sigkill_at_swap_boundary")

KILLED = {"killed", "timeout", "caught by type check", "segfault"}


def slug(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def existing(tests: list[str]) -> list[str]:
    return [t for t in tests if (REPO / t).exists()]


def prepare(module: str, workdir: Path, rev: str | None) -> list[str]:
    """A fresh run directory: the sources, the tests and a pyproject whose [tool.mutmut] names this module.

    With ``rev`` the sources and tests come from that git revision (a baseline), else from the working tree.
    """
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    if rev:
        archive = subprocess.run(
            ["git", "archive", rev, "core", "tests"], cwd=REPO, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive.stdout, check=True)
    else:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache")
        shutil.copytree(REPO / "core", workdir / "core", ignore=ignore)
        shutil.copytree(REPO / "tests", workdir / "tests", ignore=ignore)
    # Tests that build a real data dir read the example policy (tests/unit/test_backup_service.py real_state).
    shutil.copytree(REPO / "examples", workdir / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    tests = [t for t in TESTS[module] if (workdir / t).exists()]
    config = {
        "source_paths": ["core"],
        "also_copy": ["examples"],
        "only_mutate": [module],
        "pytest_add_cli_args": [
            *("-p", "no:randomly", "-p", "no:xdist", "-p", "no:cacheprovider", "-q"),
            *("-k", "not (" + " or ".join(DESELECT) + ")"),
        ],
        "pytest_add_cli_args_test_selection": tests,
        "use_git_change_detection": False,
        "track_dependencies": False,
        # A mutant that loops forever (a read loop whose stop condition is mutated) is killed after
        # (estimated CPU seconds of its tests + 1) x 5 x 2 CPU seconds, not mutmut's default x 15 x 2:
        # minutes per such mutant otherwise. The budget is CPU time, so a busy machine does not trip it.
        "timeout_multiplier": 5.0,
    }
    lines = (REPO / "pyproject.toml").read_text("utf-8").splitlines()
    lines.append("")
    lines.append("[tool.mutmut]")
    lines += [f"{key} = {json.dumps(value)}" for key, value in config.items()]
    (workdir / "pyproject.toml").write_text("\n".join(lines) + "\n", "utf-8")
    return tests


def statuses(workdir: Path, module: str) -> dict[str, str]:
    from mutmut.stats import status_by_exit_code

    meta = workdir / "mutants" / (module + ".meta")
    data = json.loads(meta.read_text("utf-8"))
    return {name: status_by_exit_code[code] for name, code in data["exit_code_by_key"].items()}


def diffs_of(workdir: Path, module: str, names: list[str]) -> dict[str, str]:
    """Each mutant's diff against the original function (what ``mutmut show`` prints), in one process."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    here = Path.cwd()
    os.chdir(workdir)
    try:
        return {name: get_diff_for_mutant(name, path=Path(module)) for name in names}
    finally:
        os.chdir(here)


def run_module(
    module: str, children: int, out: Path, rev: str | None, sample: str | None = None
) -> dict[str, object]:
    workdir = BUILD / "work" / slug(module)
    tests = prepare(module, workdir, rev)
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    started = time.monotonic()
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    log = (out / f"{slug(module)}.log").open("w")
    done = subprocess.run(
        ["nice", "-n", "15", mutmut, "run", "--max-children", str(children)]
        + ([f"{slug(module)}.*__mutmut_{sample}"] if sample else []),
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        check=False,
    )
    log.close()
    seconds = round(time.monotonic() - started)
    if done.returncode != 0:
        raise SystemExit(f"mutmut failed on {module} (exit {done.returncode}); see {log.name}")
    return collect(module, out, tests, rev, seconds, sample)


def collect(
    module: str, out: Path, tests: list[str], rev: str | None, seconds: int, sample: str | None = None
) -> dict[str, object]:
    """Counts and survivors' diffs from a run directory; an interrupted run gives a partial result."""
    workdir = BUILD / "work" / slug(module)
    by_name = statuses(workdir, module)
    counts: dict[str, int] = {}
    for status in by_name.values():
        counts[status] = counts.get(status, 0) + 1
    total = len(by_name)
    killed = sum(1 for s in by_name.values() if s in KILLED)
    alive = sorted(n for n, s in by_name.items() if s not in KILLED and s != "not checked")
    result: dict[str, object] = {
        "module": module,
        "tests": tests,
        "revision": rev or "working tree",
        "total": total,
        "killed": killed,
        "score": round(100.0 * killed / total, 1) if total else 100.0,
        "counts": counts,
        "seconds": seconds,
        "not_checked": counts.get("not checked", 0),
        "sample": sample,
        "alive": [
            {"name": n, "status": by_name[n], "diff": d} for n, d in diffs_of(workdir, module, alive).items()
        ],
    }
    (out / f"{slug(module)}.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    return result


def recheck(module: str, out: Path, only: list[str] | None = None) -> dict[str, object]:
    """Re-run the module's current tests against each mutant a finished run left alive, without a new run.

    Each mutant is applied (``mutmut apply``) to a pristine copy of the module in the run directory and the
    mapped test files, copied fresh from the working tree, run against it. Mutants whose tests now fail are
    recorded as killed in ``<slug>.json`` under ``rechecked``; a full run gives the same answer, slower.
    ``only`` runs just those test files (the ones added for the survivors): a mutant they kill is killed,
    one they miss is recorded as surviving even if another mapped file would have caught it.
    """
    workdir = BUILD / "work" / slug(module)
    result_path = out / f"{slug(module)}.json"
    result = json.loads(result_path.read_text("utf-8"))
    source = workdir / module
    pristine = source.with_suffix(".py.orig")
    if not pristine.exists():
        shutil.copy(source, pristine)
    shutil.rmtree(workdir / "tests")
    shutil.copytree(REPO / "tests", workdir / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    tests = only or existing(TESTS[module])
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    env = dict(os.environ, PYTHONPATH=str(workdir), PYTHONDONTWRITEBYTECODE="1")
    rechecked: dict[str, str] = {}
    equivalent_file = REPO / "scripts" / "mutation_equivalents.json"
    equivalent = json.loads(equivalent_file.read_text("utf-8")) if equivalent_file.exists() else {}
    try:
        for alive in result["alive"]:  # type: ignore[union-attr]
            name = alive["name"]
            if name in equivalent:
                continue
            shutil.copy(pristine, source)
            subprocess.run([mutmut, "apply", name], cwd=workdir, capture_output=True, check=True)
            pytest = [sys.executable, "-m", "pytest", *tests, "-x", "-q", "-n", "0", "-p", "no:randomly"]
            done = subprocess.run(
                [
                    "nice",
                    "-n",
                    "15",
                    *pytest,
                    "-p",
                    "no:cacheprovider",
                    "-k",
                    f"not ({' or '.join(DESELECT)})",
                ],
                cwd=workdir,
                env=env,
                capture_output=True,
                check=False,
            )
            rechecked[name] = "killed" if done.returncode == 1 else "survived"
            print(f"{name}: {rechecked[name]}", flush=True)
    finally:
        shutil.copy(pristine, source)
    result["rechecked"] = rechecked
    result["recheck_tests"] = tests
    result_path.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    return result


# Runs inside the run directory's trampolined ``mutants/`` copy: mutmut's trampoline reads MUTANT_UNDER_TEST
# at every call, so one process can test mutant after mutant without paying Python and pytest start-up.
_IN_PROCESS = """
import json, os, sys
import pytest
names, args = json.loads(sys.argv[1]), sys.argv[2:]
def run(name):
    os.environ["MUTANT_UNDER_TEST"] = name
    return pytest.main([*args, "-x", "-q", "--no-header", "-p", "no:randomly", "-p", "no:cacheprovider"])
assert run("") == 0, "the tests fail without any mutant"
for name in names:
    print("RESULT", name, "killed" if run(name) == 1 else "survived", flush=True)
assert run("") == 0, "the tests fail without any mutant after the run (state leaked between mutants)"
"""


def recheck_in_process(module: str, out: Path, only: list[str] | None = None) -> dict[str, object]:
    """:func:`recheck` in one pytest process (the trampolined copy in ``mutants/``): much faster, same
    answers as long as the tests leave no state behind, which two clean runs before and after check."""
    workdir = BUILD / "work" / slug(module)
    mutants = workdir / "mutants"
    result_path = out / f"{slug(module)}.json"
    result = json.loads(result_path.read_text("utf-8"))
    shutil.rmtree(mutants / "tests")
    shutil.copytree(REPO / "tests", mutants / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    tests = only or existing(TESTS[module])
    equivalent_file = REPO / "scripts" / "mutation_equivalents.json"
    equivalent = json.loads(equivalent_file.read_text("utf-8")) if equivalent_file.exists() else {}
    names = [a["name"] for a in result["alive"] if a["name"] not in equivalent]  # type: ignore[union-attr]
    args = [*tests, "-p", "no:xdist", "-k", f"not ({' or '.join(DESELECT)})"]
    env = dict(os.environ, PYTHONPATH=str(mutants), PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run(
        ["nice", "-n", "15", sys.executable, "-c", _IN_PROCESS, json.dumps(names), *args],
        cwd=mutants,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    rechecked = dict(result.get("rechecked", {}))  # type: ignore[call-overload]
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            _, name, verdict = line.split()
            rechecked[name] = verdict
            print(f"{name}: {verdict}", flush=True)
    if done.returncode != 0:
        raise SystemExit(
            f"in-process recheck failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    result["rechecked"] = rechecked
    result["recheck_tests"] = tests
    result_path.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: all)")
    parser.add_argument("--children", type=int, default=2, help="parallel mutant workers (default 2)")
    parser.add_argument("--list", action="store_true", help="print the module -> tests mapping and stop")
    parser.add_argument(
        "--recheck", action="store_true", help="re-test the survivors of the last run with the current tests"
    )
    parser.add_argument(
        "--in-process", action="store_true", help="with --recheck: all survivors in one pytest process"
    )
    parser.add_argument(
        "--tests",
        nargs="+",
        help="with --recheck: only these test files (e.g. the ones added for the survivors)",
    )
    parser.add_argument(
        "--collect", action="store_true", help="write the results of an interrupted run (partial) and stop"
    )
    parser.add_argument("--rev", help="mutate and test this git revision instead of the working tree")
    parser.add_argument(
        "--sample",
        help="run only the mutants whose number matches this glob, e.g. '*[05]' (every fifth): a "
        "systematic sample across all functions when a full run does not fit the time",
    )
    parser.add_argument(
        "--out", type=Path, default=BUILD, help="where the results go (default build/mutation)"
    )
    parser.add_argument("--target", type=float, default=90.0, help="minimum score per module (default 90)")
    args = parser.parse_args(argv)
    if args.list:
        for module, tests in TESTS.items():
            print(module, " ".join(existing(tests)))
        return 0
    unknown = [m for m in args.modules if m not in TESTS]
    if unknown:
        parser.error(f"not in the mapping: {', '.join(unknown)}; known: {', '.join(TESTS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.collect:
        for module in args.modules:
            tests = [t for t in TESTS[module] if (BUILD / "work" / slug(module) / t).exists()]
            result = collect(module, args.out.resolve(), tests, args.rev, 0)
            print(
                f"{module}: {result['killed']}/{result['total']} killed, {result['not_checked']} not checked"
            )
        return 0
    if args.recheck:
        for module in args.modules or list(TESTS):
            check = recheck_in_process if args.in_process else recheck
            result = check(module, args.out.resolve(), args.tests)
            alive = [n for n, v in dict(result["rechecked"]).items() if v == "survived"]  # type: ignore[call-overload]
            print(f"{module}: {len(alive)} of {len(result['rechecked'])} survivors still alive")  # type: ignore[arg-type]
        return 0
    below = []
    for module in args.modules or list(TESTS):
        result = run_module(module, args.children, args.out.resolve(), args.rev, args.sample)
        print(
            f"{module}: {result['killed']}/{result['total']} killed = {result['score']} % "
            f"({result['seconds']} s) {result['counts']}",
            flush=True,
        )
        if float(str(result["score"])) < args.target:
            below.append(module)
    if below:
        print(f"below {args.target} %: {', '.join(below)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
