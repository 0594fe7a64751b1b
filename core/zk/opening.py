"""An auditor's opening of one committed supplier: both commitments hold the same record.

The prover reveals one row: the supplier record, its salt, its BLAKE3 inclusion proof under the signed
``supplier_root`` and the Poseidon path of its slot inside its batch. :func:`check_opening` confirms, from
public data only, that the record is in the BLAKE3 commitment, that its screening key and BLAKE3 leaf are what
the Poseidon leaf absorbed, and that this leaf sits at the same row of the batch the v3 evidence proved.
Nothing else about the other suppliers is revealed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.commitments import Supplier, supplier_leaf
from core.errors import InvalidInputError
from core.merkle import InclusionProof, MerkleTree, verify_inclusion
from core.name_keys import KeyVersion
from core.screening import screening_key
from core.zk.evidence import ScreeningEvidence, field_hex, parse_field
from core.zk.gaptree import key248, merkle_path
from core.zk.poseidon import hash2
from core.zk.witness import ScreenedLeaf, batches, blake_field, jurisdiction_code


class SupplierOpening(BaseModel):
    model_config = ConfigDict(frozen=True)

    row: int
    name: str
    jurisdiction: str
    tier: int
    salt: str
    blake3_proof: InclusionProof
    slot_path: tuple[str, ...]


def open_supplier(
    leaves: Sequence[ScreenedLeaf], suppliers: Sequence[Supplier], batch_size: int, row: int
) -> SupplierOpening:
    """The prover's opening of ``row`` (``leaves`` from :func:`core.zk.prover.screened_leaves`)."""
    batch = batches(leaves, batch_size)[row // batch_size]
    levels = _levels([leaf.commitment for leaf in batch], batch_size)
    siblings, _bits = merkle_path(levels, row % batch_size)
    s = suppliers[row]
    return SupplierOpening(
        row=row,
        name=s.name,
        jurisdiction=s.jurisdiction,
        tier=s.tier,
        salt=field_hex(leaves[row].salt),
        blake3_proof=MerkleTree([supplier_leaf(x) for x in suppliers]).prove(row),
        slot_path=tuple(field_hex(v) for v in siblings),
    )


def _levels(commitments: list[int], batch_size: int) -> list[list[int]]:
    level = commitments + [0] * (batch_size - len(commitments))
    levels = [level]
    while len(level) > 1:
        level = [hash2(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        levels.append(level)
    return levels


def check_opening(
    opening: SupplierOpening,
    supplier_root: bytes,
    evidence: ScreeningEvidence,
    version: KeyVersion = KeyVersion.V1,
) -> list[str]:
    """Failures (empty when the opening agrees with both commitments); ``version``: the lists' key version."""
    record = Supplier(opening.name, opening.jurisdiction, opening.tier)
    leaf = supplier_leaf(record)
    failures = []
    if opening.blake3_proof.index != opening.row or not verify_inclusion(
        leaf, opening.blake3_proof, supplier_root
    ):
        failures.append("record is not at this row of the BLAKE3 supplier commitment")
    if not 0 <= opening.row < evidence.count:
        return [*failures, "row outside the screened count"]
    try:
        node = ScreenedLeaf(
            key248(screening_key(opening.name, version)),
            parse_field(opening.salt, "salt"),
            blake_field(leaf),
            tier=opening.tier,
            jurisdiction=jurisdiction_code(opening.jurisdiction),
        ).commitment
    except InvalidInputError as exc:
        return [*failures, f"record cannot be a circuit leaf: {exc.message}"]
    index = opening.row % evidence.batch_size
    for sibling in opening.slot_path:
        value = parse_field(sibling, "slot_path")
        node = hash2(value, node) if index & 1 else hash2(node, value)
        index >>= 1
    expected = parse_field(evidence.batches[opening.row // evidence.batch_size].batch_root, "batch_root")
    if len(opening.slot_path) != evidence.batch_size.bit_length() - 1 or node != expected:
        failures.append("Poseidon leaf of this record is not at this row of the proved batch")
    return failures


OPENING_SCHEMA: Literal["cap-zk-opening.v1"] = "cap-zk-opening.v1"


class OpeningDocument(BaseModel):
    """``cap-zk-opening.v1``: one opening, named by the proof it opens (subject and signed supplier root)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_: Literal["cap-zk-opening.v1"] = Field(default=OPENING_SCHEMA, alias="schema")
    subject: str
    supplier_root: str
    opening: SupplierOpening
