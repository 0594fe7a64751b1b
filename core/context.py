"""Evaluation contexts: what an IR variable means for the prover and for a verifier.

Both read roots from the manifest (``<root>`` and ``<root>_present``). The prover's context holds
the real records and the sanctions list and produces Merkle evidence; the public context holds
only what a proof discloses (counts, roots, evidence) and re-checks that evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.commitments import Supplier, Ubo, supplier_leaf, ubo_leaf
from core.digest import Digest
from core.errors import CapError, InvalidInputError
from core.manifest import Manifest
from core.name_keys import KeyVersion
from core.rules import ListLength, MissingInputError, RuleResult
from core.sanctions import RiskLevel
from core.screening import (
    MembershipProof,
    NonMembershipProof,
    SanctionsList,
    verify_membership,
    verify_non_membership,
)

ROOT_VARS = ("company_commitment_root", "supplier_root", "ubo_root", "sanctions_root", "jurisdiction_root")
LIST_VARS = {"supplier_hashes": "supplier_count", "ubo_hashes": "ubo_count"}
KEY_SETS = frozenset({"sanctions_root"})
_MISSING = object()
POSSIBLE_MATCH_COUNT = "possible_match_count"
NEAR_MIN_BP = 9000  # near matches are reported from similarity 0.9 (core.screening default threshold)


class EvidenceError(CapError):
    """Evidence in a proof does not check out against the public roots."""

    code = "evidence_invalid"


def root_lookup(manifest: Manifest, name: str) -> Any:
    """Root variables from the manifest, or ``_MISSING`` if ``name`` is not one."""
    if name in ROOT_VARS:
        value = getattr(manifest, name)
        if value is None:
            raise MissingInputError(f"manifest has no {name}", field=name)
        return value
    if name.endswith("_present") and name.removesuffix("_present") in ROOT_VARS:
        return getattr(manifest, name.removesuffix("_present")) is not None
    return _MISSING


def prover_public(
    suppliers: Sequence[Supplier], ubos: Sequence[Ubo], high_risk: dict[str, RiskLevel] | None
) -> dict[str, int | bool | str]:
    """The scalar inputs a proof discloses: counts, highest tier, high-risk count when a list is given."""
    public: dict[str, int | bool | str] = {
        "supplier_count": len(suppliers),
        "ubo_count": len(ubos),
        "max_supplier_tier": max((s.tier for s in suppliers), default=0),
    }
    if high_risk is not None:
        public["high_risk_supplier_count"] = sum(
            1 for s in suppliers if high_risk.get(s.jurisdiction) is RiskLevel.HIGH
        )
    return public


def possible_match_total(results: Sequence[RuleResult]) -> int:
    """How many possible matches the screening rules' evidence lists (disclosed as a public count)."""
    total = 0
    for r in results:
        near = r.evidence.get("possible_matches") if "list_root" in r.evidence else None
        total += len(near) if isinstance(near, list) else 0
    return total


def selection_inputs(public: dict[str, int | bool | str]) -> dict[str, int | bool | str]:
    """The public scalars rule selection saw at build (the derived possible-match count came later)."""
    return {k: v for k, v in public.items() if k != POSSIBLE_MATCH_COUNT}


class ProverContext:
    """The prover's data: records, sanctions list, high-risk list, the manifest being proved."""

    def __init__(
        self,
        manifest: Manifest,
        suppliers: Sequence[Supplier],
        ubos: Sequence[Ubo],
        lists: SanctionsList | None,
        public: dict[str, int | bool | str],
    ) -> None:
        self.manifest, self.suppliers, self.ubos, self.lists, self.public = (
            manifest,
            suppliers,
            ubos,
            lists,
            public,
        )

    def lookup(self, name: str) -> Any:
        value = root_lookup(self.manifest, name)
        if value is not _MISSING:
            return value
        if name == "supplier_hashes":
            return ["0x" + supplier_leaf(s).hex() for s in self.suppliers]
        if name == "ubo_hashes":
            return ["0x" + ubo_leaf(u).hex() for u in self.ubos]
        if name in self.public:
            return self.public[name]
        raise MissingInputError(f"no input named {name!r}", field=name)

    def is_key_set(self, name: str) -> bool:
        return name in KEY_SETS

    def _names(self, lhs: str) -> list[str]:
        if lhs == "supplier_hashes":
            return [s.name for s in self.suppliers]
        if lhs == "ubo_hashes":
            return [u.name for u in self.ubos]
        raise MissingInputError(
            f"{lhs!r} cannot be screened", field=lhs, expected="supplier_hashes or ubo_hashes"
        )

    def screen(self, lhs: str, rhs: str, claimed: dict[str, Any] | None) -> tuple[bool, str, dict[str, Any]]:
        if self.lists is None:
            raise MissingInputError("no sanctions list was given", field=rhs)
        if self.manifest.sanctions_root != self.lists.root_hex:
            raise MissingInputError("manifest sanctions_root is not the loaded list's root", field=rhs)
        items, matches = [], []
        for i, name in enumerate(self._names(lhs)):
            key = self.lists.key_of(name)
            if self.lists.contains(key):
                items.append(
                    {"key": "0x" + key.hex(), "listed": self.lists.prove_present(key).model_dump(mode="json")}
                )
                continue
            items.append(
                {"key": "0x" + key.hex(), "absent": self.lists.prove_absent(key).model_dump(mode="json")}
            )
            matches += [
                {"item": i, "candidate": m.candidate, "score_bp": m.score_bp, "refs": list(m.refs)}
                for m in self.lists.near_matches(name)
            ]
        listed = sum(1 for it in items if "listed" in it)
        evidence = {
            "list_root": self.lists.root_hex,
            "count": len(items),
            "items": items,
            "possible_matches": matches,
        } | _key_version_field(self.lists.key_version)
        return listed == 0, _screen_message(lhs, listed, len(items), len(matches)), evidence


def _key_version_field(version: KeyVersion) -> dict[str, str]:
    """Evidence names the key version unless it is v1 (so v1 proofs keep their original bytes)."""
    return {} if version is KeyVersion.V1 else {"key_version": version.value}


def check_key_version(claimed: dict[str, Any]) -> KeyVersion:
    """The evidence's key version (absent: v1). Raises :class:`EvidenceError` for one this code lacks."""
    value = claimed.get("key_version", KeyVersion.V1.value)
    try:
        return KeyVersion(value)
    except (TypeError, ValueError):
        known = ", ".join(v.value for v in KeyVersion)
        raise EvidenceError(
            f"evidence uses screening key version {value!r}; this verifier knows {known}"
        ) from None


def _screen_message(lhs: str, listed: int, total: int, near: int) -> str:
    text = f"{listed} of {total} {lhs.removesuffix('_hashes')} names are on the sanctions list"
    return text + (f"; {near} possible matches for review" if near else "")


class PublicContext:
    """What a verifier knows: the manifest, the disclosed scalars, the evidence in the proof."""

    def __init__(
        self,
        manifest: Manifest,
        public: dict[str, int | bool | str],
        listed_names: dict[str, tuple[str, ...]] | None = None,
        key_version: KeyVersion | None = None,
    ) -> None:
        self.manifest, self.public, self.listed_names = manifest, public, listed_names
        self.key_version = key_version  # the trusted list's; None when the verifier holds no list

    def lookup(self, name: str) -> Any:
        value = root_lookup(self.manifest, name)
        if value is not _MISSING:
            return value
        if name in LIST_VARS and LIST_VARS[name] in self.public:
            count = self.public[LIST_VARS[name]]
            if isinstance(count, int) and not isinstance(count, bool):
                return ListLength(count)
        if name in self.public:
            return self.public[name]
        raise MissingInputError(f"proof discloses no input named {name!r}", field=name)

    def is_key_set(self, name: str) -> bool:
        return name in KEY_SETS

    def screen(self, lhs: str, rhs: str, claimed: dict[str, Any] | None) -> tuple[bool, str, dict[str, Any]]:
        root_text = self.lookup(rhs)
        expected = self.lookup(lhs)
        if not isinstance(expected, ListLength):
            raise MissingInputError(f"{lhs!r} cannot be screened", field=lhs)
        if not isinstance(claimed, dict) or claimed.get("list_root") != root_text:
            raise EvidenceError(f"evidence for {lhs} is not over the manifest's {rhs}")
        items = claimed.get("items")
        if (
            not isinstance(items, list)
            or len(items) != expected.length
            or claimed.get("count") != expected.length
        ):
            raise EvidenceError(f"evidence covers a different number of {lhs} than the proof discloses")
        version = check_key_version(claimed)
        if self.key_version is not None and version is not self.key_version:
            raise EvidenceError(
                f"evidence for {lhs} screened names under {version.value}, but the trusted list with this"
                f" root keys them under {self.key_version.value}"
            )
        root = Digest.parse(root_text, field=rhs).raw
        flags = [_check_item(i, item, root) for i, item in enumerate(items)]
        near = claimed.get("possible_matches")
        if not isinstance(near, list):
            raise EvidenceError(f"evidence for {lhs} has no possible_matches list")
        for n, match in enumerate(near):
            _check_match(n, match, flags, self.listed_names)
        listed = sum(flags)
        return listed == 0, _screen_message(lhs, listed, len(items), len(near)), claimed


def _check_match(n: int, match: Any, listed: list[bool], names: dict[str, tuple[str, ...]] | None) -> None:
    """A possible match must name an absent screened item, a near score and (when the verifier holds
    the lists) a listed name with its entries. Raises :class:`EvidenceError`."""
    where = f"possible_matches[{n}]"
    if not isinstance(match, dict) or set(match) != {"item", "candidate", "score_bp", "refs"}:
        raise EvidenceError(f"{where} is malformed")
    item, score = match["item"], match["score_bp"]
    if type(item) is not int or not 0 <= item < len(listed) or listed[item]:
        raise EvidenceError(f"{where} names item {item!r}, not a screened name that is absent from the list")
    if type(score) is not int or not NEAR_MIN_BP <= score <= 10000:
        raise EvidenceError(f"{where} has score {score!r}, not a near match ({NEAR_MIN_BP}..10000 bp)")
    if names is not None and tuple(names.get(match["candidate"], ())) != tuple(match["refs"] or ()):
        raise EvidenceError(
            f"{where}: {match['candidate']!r} with refs {match['refs']} is not on the trusted list"
        )


def _check_item(index: int, item: Any, root: bytes) -> bool:
    """Verify one item's proof against ``root``; True if it is listed. Raises :class:`EvidenceError`."""
    try:
        key = Digest.parse(item["key"], field=f"items[{index}].key").raw
        if "absent" in item:
            ok = verify_non_membership(key, NonMembershipProof.model_validate(item["absent"]), root)
            listed = False
        else:
            ok = verify_membership(key, MembershipProof.model_validate(item["listed"]), root)
            listed = True
    except (KeyError, TypeError, ValueError, InvalidInputError) as exc:
        raise EvidenceError(f"evidence item {index} is malformed") from exc
    if not ok:
        raise EvidenceError(f"evidence item {index}: Merkle proof does not verify against the root")
    return listed
