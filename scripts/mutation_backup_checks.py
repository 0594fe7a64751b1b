"""Hand-made mutants of the backup content checks named in issue 15; each must make its test fail.

Each case disables (or weakens) one check in a copy of core/ and runs the test written for it:
`python scripts/mutation_backup_checks.py` prints KILLED or SURVIVED per case. A complement to
`make mutation MODULE=core/backup/restore.py`, whose full run is long (every restore test builds a backup).
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
T = "tests/unit/test_mutation_backup_restore.py"
CASES = [
    (
        "core/backup/restore.py",
        "    if manifest.backup_id != ctx.backup_id:",
        "    if False:",
        "test_manifest_of_another_backup_id_is_refused",
    ),
    (
        "core/backup/manifest.py",
        "    if key.status is KeyStatus.REVOKED:",
        "    if False:",
        "test_signer_revoked_in_the_live_keyring_is_refused",
    ),
    (
        "core/backup/restore.py",
        "    if scan_file(rel, path, FileType.KEY_METADATA):",
        "    if False:",
        "test_bad_key_metadata_is_refused",
    ),
    (
        "core/backup/restore.py",
        "    if derive_kid(public) != kid or Path(rel).stem != kid:",
        "    if Path(rel).stem != kid:",
        "test_bad_key_metadata_is_refused",
    ),
    (
        "core/backup/restore.py",
        "    if derive_kid(public) != kid or Path(rel).stem != kid:",
        "    if derive_kid(public) != kid:",
        "test_key_metadata_under_another_kids_name_is_refused",
    ),
    (
        "core/backup/restore.py",
        '        if verdict != [("ok",)]:',
        "        if False:",
        "test_failed_integrity_check_is_refused",
    ),
    (
        "core/backup/restore.py",
        "        if entry.sqlite and entry.sqlite.user_version != version:",
        "        if False:",
        "test_schema_version_must_match_the_manifest",
    ),
    (
        "core/backup/restore.py",
        "    if view.version != manifest.keyring_version:",
        "    if False:",
        "test_keyring_version_must_match_the_manifest",
    ),
    (
        "core/backup/restore.py",
        "    if live is not None and view.version < live and not ctx.allow_key_rollback:",
        "    if live is not None and view.version <= live and not ctx.allow_key_rollback:",
        "test_same_keyring_version_is_not_a_rollback",
    ),
    (
        "core/backup/restore.py",
        "        if want - tables:",
        "        if False:",
        "test_tables_named_in_the_manifest_must_exist",
    ),
    (
        "core/backup/restore.py",
        "        if problems:",
        "        if False:",
        "test_policy_rehash_problems_are_refused",
    ),
]
for module, old, new, test in CASES:
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(REPO / "core", Path(tmp) / "core")
        shutil.copytree(REPO / "tests", Path(tmp) / "tests")
        path = Path(tmp) / module
        text = path.read_text()
        assert text.count(old) == 1, (module, old)
        path.write_text(text.replace(old, new))
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                f"{T}",
                "-k",
                test,
                "-x",
                "-q",
                "-n",
                "0",
                "-p",
                "no:randomly",
                "-p",
                "no:cacheprovider",
            ],
            cwd=tmp,
            env={"PYTHONPATH": tmp, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
        )
        last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-200:]
        print(
            f"{'KILLED  ' if done.returncode == 1 else 'SURVIVED'} {module}: {old.strip()} -> {new.strip()}"
            f"  [{test}: {last}]",
            flush=True,
        )
