"""Commitment vectors: the original's flat roots (original_cap.md §7), merkle-blake3-v1 roots and proofs."""

from __future__ import annotations

from typing import Any

from core.commitments import RootScheme, commit, parse_suppliers, parse_ubos, supplier_leaf, supplier_tree
from core.errors import InvalidInputError

SUPPLIERS = (
    "name,jurisdiction,tier\nACME GmbH,DE,1\nGlobal Supply Inc,US,1\nEastern Trading,CN,2\n"
    "Nordic Materials AB,SE,1\nSouth Asian Textiles,BD,2\n"
)
UBOS = "name,birthdate,citizenship\nMax Mustermann,1970-05-15,DE\nJane Doe,1985-11-22,US\n"
BAD = {
    "csv_missing_column": "name,tier\nA,1\n",
    "csv_tier_zero": "name,jurisdiction,tier\nA,DE,0\n",
    "csv_tier_not_integer": "name,jurisdiction,tier\nA,DE,1.5\n",
    "csv_bad_country": "name,jurisdiction,tier\nA,ZZ,1\n",
    "csv_empty": "",
}


def _roots(scheme: RootScheme) -> dict[str, Any]:
    c = commit(parse_suppliers(SUPPLIERS), parse_ubos(UBOS), scheme, "2025-11-06T10:00:00Z")
    return c.model_dump(mode="json")


def _error(text: str) -> dict[str, Any]:
    try:
        parse_suppliers(text, "suppliers.csv")
    except InvalidInputError as exc:
        return {"code": exc.code, "line": exc.details.get("line"), "column": exc.details.get("column")}
    raise AssertionError("vector input was accepted")


def vectors() -> dict[str, object]:
    suppliers = parse_suppliers(SUPPLIERS)
    tree = supplier_tree(suppliers)
    out: dict[str, object] = {
        "commitments/original_flat.json": {
            "source": "original_cap.md §7 (agent/examples/suppliers.csv, ubos.csv)",
            "suppliers_csv": SUPPLIERS,
            "ubos_csv": UBOS,
            "scheme": "cap-flat-v1",
            "first_leaf_json": '{"name":"ACME GmbH","jurisdiction":"DE","tier":1}',
            "first_leaf": "0x" + supplier_leaf(suppliers[0]).hex(),
            "expected": _roots(RootScheme.FLAT),
        },
        "commitments/merkle_example.json": {
            "suppliers_csv": SUPPLIERS,
            "ubos_csv": UBOS,
            "scheme": "merkle-blake3-v1",
            "expected": _roots(RootScheme.MERKLE),
            "inclusion_proofs": [
                {"leaf": "0x" + supplier_leaf(s).hex(), **tree.prove(i).model_dump()}
                for i, s in enumerate(suppliers)
            ],
        },
        "commitments/empty_flat.json": {
            "suppliers_csv": "name,jurisdiction,tier\n",
            "ubos_csv": "name,birthdate,citizenship\n",
            "scheme": "cap-flat-v1",
            "expected": commit([], [], RootScheme.FLAT, "t").model_dump(
                mode="json", include={"supplier_root", "ubo_root"}
            ),
        },
    }
    for name, text in BAD.items():
        out[f"commitments/{name}.json"] = {"suppliers_csv": text, "expected_error": _error(text)}
    return out
