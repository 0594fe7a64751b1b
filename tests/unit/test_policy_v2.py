"""Policy v2 parsing: the golden policy bytes, JSON input, unknown keys, and bad input named precisely."""

import pytest

from core.errors import InvalidInputError, NotFoundError
from core.policy import PolicyV1, PolicyV2, load_policy_file, load_policy_text, policy_v2_hash
from core.policy.v2 import policy_v2_bytes
from tests.vectorgen.gen_policy import GOLDEN_V2_TEXT

REFERENCE = GOLDEN_V2_TEXT  # the original's reference policy, one copy in the vector generator
CANONICAL = (
    '{"id":"lksg.v1","version":"1.0","legal_basis":[{"directive":"LkSG"}],'
    '"description":"Minimal LkSG supplier check",'
    '"inputs":{"sanctions_root":{"type":"hex"},"supplier_hashes":{"type":"array","items":"hex"}},"rules":'
    '[{"id":"no_sanctions","op":"non_membership","lhs":"supplier_hashes","rhs":"sanctions_root"}]}'
)
POLICY_HASH = "sha3-256:b98c3db55f874476dc749ea32b70bdf5369a0d7bc5364f236e034f1ddcd94638"
HEAD = 'id: p\nversion: "1.0"\nlegal_basis: [{directive: LkSG}]\ndescription: d\ninputs: {}\n'


def test_reference_policy_canonical_bytes_and_hash():
    policy = load_policy_text(REFERENCE, "lksg_v1.policy.yml")
    assert isinstance(policy, PolicyV2)
    assert policy_v2_bytes(policy).decode() == CANONICAL
    assert policy_v2_hash(policy) == POLICY_HASH


def test_unknown_keys_ignored_and_json_accepted():
    text = CANONICAL[:-1] + ',"x_extra":{"anything":[1,2]}}'
    assert policy_v2_hash(load_policy_text(text, "p.json")) == POLICY_HASH


def test_shared_reference_file_gives_the_golden_hash():
    from tests.paths import shared

    assert policy_v2_hash(load_policy_file(shared("reference", "lksg_v1.policy.yml"))) == POLICY_HASH


@pytest.mark.parametrize(
    ("rule", "canonical_rule"),
    [
        pytest.param(
            "{id: a, op: eq, lhs: x, rhs: 1}", '{"id":"a","op":"eq","lhs":"x","rhs":1}', id="no_severity"
        ),
        pytest.param(
            "{id: a, op: eq, lhs: x, rhs: 1, severity: low}",
            '{"id":"a","op":"eq","lhs":"x","rhs":1,"severity":"low"}',
            id="severity_last",
        ),
        pytest.param(
            "{id: a, op: eq, lhs: {var: x, b: 1}, rhs: [1, 'y']}",
            '{"id":"a","op":"eq","lhs":{"b":1,"var":"x"},"rhs":[1,"y"]}',
            id="operand_keys_sorted",
        ),
    ],
)
def test_rule_canonical_form(rule, canonical_rule):
    policy = load_policy_text(HEAD + f"rules:\n  - {rule}\n")
    assert policy_v2_bytes(policy).decode().endswith(f'"rules":[{canonical_rule}]}}')


@pytest.mark.parametrize(
    ("text", "field", "line"),
    [
        pytest.param("- a\n- b\n", None, 1, id="yaml_not_mapping"),
        pytest.param("just a string\n", None, 1, id="yaml_scalar"),
        pytest.param("", None, None, id="empty"),
        pytest.param(HEAD + "rules:\n  - {id: a, op: eq\n", None, 8, id="yaml_syntax_error_line"),
        pytest.param(HEAD + "id: q\nrules: []\n", None, 6, id="yaml_duplicate_key"),
        pytest.param(HEAD, "rules", 1, id="missing_rules"),
        pytest.param(HEAD.replace("id: p\n", "") + "rules: []\n", "id", 1, id="missing_id"),
        pytest.param(HEAD + "rules:\n  - {id: a, lhs: x, rhs: 1}\n", "rules[0].op", 7, id="rule_missing_op"),
        pytest.param(
            HEAD + "rules:\n  - {id: a, op: eq, lhs: x, rhs: 1.5}\n", "rules[0].rhs", 7, id="float_operand"
        ),
        pytest.param(
            HEAD + "rules:\n  - {id: a, op: eq, lhs: {k: [0.5]}, rhs: 1}\n",
            "rules[0].lhs",
            7,
            id="nested_float_operand",
        ),
        pytest.param(
            HEAD + "rules:\n  - {id: a, op: eq, lhs: , rhs: 1}\n", "rules[0].lhs", 7, id="null_operand"
        ),
        pytest.param(
            HEAD + "rules:\n  - {id: 7, op: eq, lhs: x, rhs: 1}\n", "rules[0].id", 7, id="rule_id_int"
        ),
        pytest.param(HEAD.replace('"1.0"', "1.0") + "rules: []\n", "version", 2, id="version_float"),
        pytest.param(
            HEAD.replace("inputs: {}", "inputs: {x: {items: hex}}") + "rules: []\n",
            "inputs.x.type",
            5,
            id="input_missing_type",
        ),
        pytest.param(
            HEAD + "rules: []\nadaptivity:\n  predicates: [{id: p, expr: 0.5}]\n",
            "adaptivity.predicates[0].expr",
            8,
            id="float_predicate",
        ),
    ],
)
def test_bad_input_names_file_line_field(text, field, line):
    with pytest.raises(InvalidInputError) as info:
        load_policy_text(text, "bad.yml")
    details = info.value.details
    assert info.value.code == "invalid_input"
    assert details["file"] == "bad.yml"
    assert details.get("field") == field
    assert details.get("line") == line
    assert details["expected"]
    assert "bad.yml" in info.value.diagnostics()


def test_json_syntax_error_line():
    with pytest.raises(InvalidInputError) as info:
        load_policy_text('{"id": "p",\n "version": }', "p.json")
    assert info.value.details["line"] == 2


def test_missing_file_is_not_found(tmp_path):
    with pytest.raises(NotFoundError):
        load_policy_file(tmp_path / "nope.yml")


V1_OK = (
    'version: lksg.v1\nname: n\ncreated_at: "xT"\n'
    "constraints: {require_at_least_one_ubo: true, supplier_count_max: 1}\n"
)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        pytest.param(V1_OK, PolicyV1, id="v1"),
        pytest.param(V1_OK + "id: x\n", PolicyV1, id="v1_with_id_and_lksg_version"),
        pytest.param(REFERENCE, PolicyV2, id="v2_even_with_lksg_id"),
    ],
)
def test_format_detection(text, kind):
    assert isinstance(load_policy_text(text), kind)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        pytest.param(
            "version: lksg.v9\nname: n\ncreated_at: xT\n", "constraints", id="lksg_version_read_as_v1"
        ),
        pytest.param("version: x\nconstraints: {}\n", "version", id="constraints_without_id_read_as_v1"),
        pytest.param("version: x\nname: n\n", "id", id="otherwise_v2_needs_id"),
    ],
)
def test_format_detection_reports_the_chosen_format(text, field):
    with pytest.raises(InvalidInputError) as info:
        load_policy_text(text)
    assert info.value.details["field"] == field
