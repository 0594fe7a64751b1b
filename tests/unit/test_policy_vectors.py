"""Every committed policy vector holds against the implementation (hashes, IR bytes, errors)."""

import json
from pathlib import Path

import pytest

from core.errors import CapError
from core.policy import LintMode, active_rule_ids, compile_policy, load_ir, load_policy_text
from core.policy.lint import PolicyLintError
from tests.vectorgen import VECTORS_DIR

VECTORS = sorted((VECTORS_DIR / "policy").glob("*.json"))


def _run(inp: dict):
    if "ir" in inp:
        return load_ir(inp["ir"].encode(), "ir.json")
    return compile_policy(load_policy_text(inp["text"], inp["source"]), LintMode(inp["mode"]))


def test_vectors_exist():
    assert len(VECTORS) >= 30


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_policy_vector(path: Path):
    vector = json.loads(path.read_text(encoding="utf-8"))
    if "expected_error" in vector:
        want = vector["expected_error"]
        with pytest.raises(CapError) as info:
            _run(vector["input"])
        assert info.value.code == want["code"]
        for key in ("field", "line"):
            assert info.value.details.get(key) == want.get(key)
        if "lint_codes" in want:
            assert isinstance(info.value, PolicyLintError)
            assert [d.code for d in info.value.lints] == want["lint_codes"]
        return
    result = _run(vector["input"])
    want = vector["expected"]
    assert result.ir_hash == want["ir_hash"]
    if "policy_hash" not in want:
        return
    assert result.policy_hash == want["policy_hash"]
    assert result.policy_bytes.decode() == want["policy_canonical"]
    assert result.ir_pretty().decode() == want["ir_pretty"]
    assert [d.to_dict() for d in result.lints] == want["lints"]
    assert result.rule_constraints == want["rule_constraints"]
    for case in want["active_rules"]:
        assert active_rule_ids(result.ir, case["variables"]) == case["active"]
