"""Attack: hostile policy documents. Duplicate keys are found in linear time; text size, key, item, rule,
string and depth limits refuse with 413/422 naming the limit; YAML aliases and language tags are refused."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from core.errors import InvalidInputError
from core.policy.limits import PolicyLimitError, PolicyLimits, PolicyTooLargeError
from core.policy.load import parse_document
from deployments.api.app import create_app
from tests.api.conftest import api_config, bearer

KEYS = 60_000
ROOMY = PolicyLimits(max_bytes=8 * 1024 * 1024, max_keys=10 * KEYS)
HEAD = 'id: p\nversion: "2.0"\n'


def _json_keys(n: int, duplicate: bool = False) -> str:
    keys = [f'"k{i:05d}":0' for i in range(n)]
    if duplicate:
        keys.append('"k00000":1')
    return '{"id":"p","version":"2.0","inputs":{' + ",".join(keys) + '},"rules":[]}'


def _yaml_keys(n: int, duplicate: bool = False) -> str:
    keys = [f"  k{i:05d}: 0\n" for i in range(n)] + (["  k00000: 1\n"] if duplicate else [])
    return HEAD + "inputs:\n" + "".join(keys) + "rules: []\n"


@pytest.mark.parametrize("make", [_json_keys, _yaml_keys], ids=["json", "yaml"])
def test_duplicate_among_60k_keys_is_found_in_linear_time(make):
    """Before: the JSON duplicate check counted every key against every other (60k keys: 127 s)."""
    with pytest.raises(InvalidInputError, match="duplicate key 'k00000'"):
        parse_document(make(KEYS, duplicate=True), "<attack>", ROOMY)
    data, _ = parse_document(make(KEYS), "<attack>", ROOMY)
    assert len(data["inputs"]) == KEYS


@pytest.mark.parametrize("field", ["policy", "policy_yaml"])
def test_60k_keys_through_the_api_are_422_naming_the_keys_limit(client, issuer, field):
    policy = json.loads(_json_keys(KEYS)) if field == "policy" else _yaml_keys(KEYS)
    r = client.post("/policy/compile", json={field: policy}, headers=bearer(issuer.token("policy:compile")))
    assert r.status_code == 422, r.text[:300]
    body = r.json()
    assert body["error"] == "policy_limit_exceeded"
    assert body["details"]["limit"] == "keys"
    assert body["details"]["maximum"] == PolicyLimits().max_keys


def _rules(n: int) -> str:
    return HEAD + "rules:\n" + "".join(f"  - {{id: r{i}, op: range_max, lhs: x, rhs: 1}}\n" for i in range(n))


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        pytest.param(_rules(1001), "rules", id="rules"),
        pytest.param(HEAD + "description: " + "x" * 5000 + "\nrules: []\n", "string length", id="string"),
        pytest.param(HEAD + "rules:\n" + "".join(f"  - k{i}\n" for i in range(10_001)), "items", id="items"),
        pytest.param(HEAD + "x: " + "[" * 40 + "]" * 40 + "\nrules: []\n", "depth", id="yaml_depth"),
        pytest.param('{"id":"p","x":' + "[" * 40 + "]" * 40 + "}", "depth", id="json_depth"),
        pytest.param('{"id":"p","x":' + "[" * 100_000 + "]" * 100_000 + "}", "depth", id="json_stack"),
    ],
)
def test_policy_over_a_limit_names_it(text, limit):
    with pytest.raises(PolicyLimitError) as caught:
        parse_document(text, "<attack>")
    assert caught.value.details["limit"] == limit
    assert caught.value.details["file"] == "<attack>"


def test_policy_text_over_the_size_limit_is_refused_before_parsing():
    with pytest.raises(PolicyTooLargeError) as caught:
        parse_document("{" + " " * PolicyLimits().max_bytes, "<attack>")
    assert caught.value.details["limit"] == "bytes"


def test_policy_text_over_the_size_limit_is_413_through_the_api(settings, issuer, flows):
    """With the API's body limit raised above it, the policy's own size limit still holds."""
    config = api_config(issuer.jwks_path, max_body_bytes=4 * 1024 * 1024)
    client = TestClient(create_app(settings, config, flows=flows))
    text = HEAD + "#" * 1_500_000 + "\n"
    r = client.post(
        "/policy/compile", json={"policy_yaml": text}, headers=bearer(issuer.token("policy:compile"))
    )
    assert r.status_code == 413, r.text[:200]
    assert r.json()["error"] == "policy_too_large"
    assert r.json()["details"]["maximum"] == PolicyLimits().max_bytes


BILLION_LAUGHS = (
    HEAD
    + "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
)


def test_yaml_aliases_are_refused_before_expansion():
    """Nine levels of nine aliases: 387 million leaves if expanded."""
    with pytest.raises(PolicyLimitError) as caught:
        parse_document(BILLION_LAUGHS, "<attack>")
    assert caught.value.details["limit"] == "aliases"


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['true']",
        "!!python/name:os.system",
        "!!python/object:builtins.object {}",
        "!custom 1",
    ],
)
def test_yaml_language_tags_are_refused(tag):
    with pytest.raises(InvalidInputError) as caught:
        parse_document(HEAD + f"x: {tag}\nrules: []\n", "<attack>")
    assert caught.value.code == "invalid_input"
    assert "constructor" in caught.value.message


def test_deep_json_is_refused_before_the_parser_recurses():
    """With the recursion limit raised (as some libraries do), the C JSON parser would overflow the C
    stack on 100k open brackets and crash the worker; the depth is measured first, without recursion."""
    import sys

    text = '{"id":"p","x":' + "[" * 100_000 + "]" * 100_000 + "}"
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1_000_000)
    try:
        with pytest.raises(PolicyLimitError) as caught:
            parse_document(text, "<attack>")
    finally:
        sys.setrecursionlimit(old)
    assert caught.value.details["limit"] == "depth" and caught.value.details["found"] == 100_001


def test_brackets_inside_json_strings_do_not_count_as_depth():
    text = '{"id":"p","version":"1","x":"' + "[" * 100 + '\\"' + "{" * 100 + '"}'
    parse_document(text, "<ok>")  # 200 brackets inside a string: no depth, no refusal
