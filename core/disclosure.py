"""What a proof discloses, held together: public scalars bound to each other and to the evidence, and
the claims a verifier can only take on the prover's word, reported as checks of kind ``attested``.

Bound (a ``public:<name>`` check fails when they disagree): the screened items of each screening rule
equal the disclosed count (re-checked in :mod:`core.context`), ``possible_match_count`` equals the
possible matches the evidence lists, ``max_supplier_tier`` is 0 exactly when there are no suppliers,
``high_risk_supplier_count`` is disclosed exactly when the manifest has a jurisdiction root and is at
most ``supplier_count``. Attested (status ok, never hidden): that the screened names are those of the
committed records, the counts are the committed lists' sizes, the scalars were computed from them, and
the possible matches are complete. Pure.
"""

from __future__ import annotations

from collections.abc import Callable

from core.checks import Check, CheckKind
from core.context import POSSIBLE_MATCH_COUNT, possible_match_total
from core.modes import CheckStatus
from core.proof import Proof

Public = dict[str, int | bool | str]


def _count(public: Public, name: str) -> int | None:
    value = public.get(name)
    return value if type(value) is int and value >= 0 else None


def _fail(name: str, message: str) -> Check:
    return Check(id=f"public:{name}", kind=CheckKind.INTEGRITY, status=CheckStatus.FAIL, message=message)


def _counts(proof: Proof) -> list[Check]:
    public = proof.public
    return [
        _fail(name, f"{name} is {public.get(name)!r}, expected a count (integer ≥ 0)")
        for name in ("supplier_count", "ubo_count", "max_supplier_tier")
        if _count(public, name) is None
    ]


def _tier(proof: Proof) -> list[Check]:
    suppliers, tier = _count(proof.public, "supplier_count"), _count(proof.public, "max_supplier_tier")
    if suppliers is None or tier is None or (suppliers == 0) == (tier == 0):
        return []
    return [
        _fail(
            "max_supplier_tier",
            f"max_supplier_tier {tier} does not fit supplier_count {suppliers} (tiers are ≥ 1)",
        )
    ]


def _high_risk(proof: Proof) -> list[Check]:
    public, has_root = proof.public, proof.manifest.jurisdiction_root is not None
    name = "high_risk_supplier_count"
    if name not in public:
        return (
            [_fail(name, "the manifest has a jurisdiction root but no high_risk_supplier_count is disclosed")]
            if has_root
            else []
        )
    if not has_root:
        return [
            _fail(name, f"{name} is disclosed but the manifest has no jurisdiction root to count against")
        ]
    value, suppliers = _count(public, name), _count(public, "supplier_count")
    if value is None or (suppliers is not None and value > suppliers):
        return [_fail(name, f"{name} {public[name]!r} is not a count of at most supplier_count {suppliers}")]
    return []


def _possible_matches(proof: Proof) -> list[Check]:
    public, screened = proof.public, proof.manifest.sanctions_root is not None
    if POSSIBLE_MATCH_COUNT not in public:
        return (
            [
                _fail(
                    POSSIBLE_MATCH_COUNT,
                    "the proof screens against a sanctions root but discloses no possible_match_count",
                )
            ]
            if screened
            else []
        )
    listed = possible_match_total(proof.rules)
    if public[POSSIBLE_MATCH_COUNT] != listed:
        return [
            _fail(
                POSSIBLE_MATCH_COUNT,
                f"possible_match_count {public[POSSIBLE_MATCH_COUNT]!r} but the evidence lists {listed} "
                "possible matches",
            )
        ]
    return []


SCALAR_BINDINGS: tuple[Callable[[Proof], list[Check]], ...] = (_counts, _tier, _high_risk)
"""The bindings that hold for v3 too (v3 carries no possible-match list, only its count)."""
BINDINGS: tuple[Callable[[Proof], list[Check]], ...] = (*SCALAR_BINDINGS, _possible_matches)


def binding_checks(proof: Proof) -> list[Check]:
    """``public:<name>`` failures: disclosed scalars that contradict each other or the evidence."""
    return [check for bind in BINDINGS for check in bind(proof)]


def _attested(name: str, message: str) -> Check:
    return Check(id=f"attested:{name}", kind=CheckKind.ATTESTED, status=CheckStatus.OK, message=message)


def attested_checks(proof: Proof) -> list[Check]:
    """What the verifier trusts the prover's signature for (it cannot be recomputed from the proof)."""
    p, kid = proof.public, proof.signature.kid if proof.signature else "the prover"
    screened = [r for r in proof.rules if "list_root" in r.evidence]
    out = [
        _attested(
            "counts",
            f"supplier_count {p.get('supplier_count')} and ubo_count {p.get('ubo_count')} are the sizes "
            f"of the committed lists (the roots do not reveal their size): signed by {kid}",
        ),
        _attested(
            "max_supplier_tier",
            f"max_supplier_tier {p.get('max_supplier_tier')} is the highest tier among the committed "
            f"suppliers: signed by {kid}",
        ),
    ]
    if "high_risk_supplier_count" in p:
        out.append(
            _attested(
                "high_risk_supplier_count",
                f"high_risk_supplier_count {p['high_risk_supplier_count']} counts the committed suppliers "
                f"in HIGH countries of jurisdiction root {proof.manifest.jurisdiction_root}: signed by {kid}",
            )
        )
    if screened:
        keys = sum(len(r.evidence.get("items") or []) for r in screened)
        out += [
            _attested(
                "screened_names",
                f"the {keys} screened keys are those of the committed records' names (their membership "
                f"in the list is proved, their link to the committed records is not): signed by {kid}",
            ),
            _attested(
                "possible_matches",
                f"the {p.get(POSSIBLE_MATCH_COUNT)} possible matches are every near match of the screened "
                f"names (each is checked to name a listed entry; completeness is not provable): "
                f"signed by {kid}",
            ),
        ]
    return out
