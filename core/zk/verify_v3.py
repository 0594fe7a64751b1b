"""Verification of a ``cap-proof.v3``: what differs from v2, plugged into :func:`core.verify.verify_proof`.

Everything else is v2's: signatures and key status, IR and policy, company root, trusted list roots, every
rule re-evaluated. Here: the screening rules' evidence is :class:`~core.zk.evidence.ScreeningEvidence`,
checked by :func:`~core.zk.evidence.check_screening` against the commitment the signed manifest carries, the
verifier's pinned vks (development vks only when it allows them) and the gap root it derives itself from the
trusted lists whose root the manifest names. Each failed rule is a check ``zk:<suppliers|ubos>:<code>``; a
verified screening is one ``zk:<suppliers|ubos>`` check. What the circuit does not prove is reported as
``attested:*`` (ADR 0007, docs/formats/proof_v3.md). No I/O but the gap-root cache (:func:`gap_root`).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from core.checks import Check, CheckKind
from core.context import POSSIBLE_MATCH_COUNT, EvidenceError, PublicContext, check_key_version
from core.disclosure import SCALAR_BINDINGS, attested_checks
from core.errors import InvalidInputError
from core.fsio import atomic_write
from core.modes import CheckStatus
from core.name_keys import KeyVersion
from core.proof import Proof
from core.rules import ListLength, MissingInputError
from core.screening import ListsFile
from core.trust import TrustAnchors, TrustedLists
from core.zk.evidence import (
    ScreeningCheck,
    ScreeningCommitment,
    ScreeningEvidence,
    check_screening,
    field_hex,
)
from core.zk.gaptree import GapTree, key248
from core.zk.proof_v3 import SCREENED, ZK_EVIDENCE
from core.zk.prover import high_risk_jurisdictions
from core.zk.toolchain import cache_dir

_GAP_ROOTS: dict[tuple[str, str, int], str | None] = {}
"""(sanctions root, key version, depth) → gap root: a long-running verifier derives each once."""


def gap_root(lists: ListsFile, depth: int) -> str | None:
    """The gap root of ``lists`` at ``depth`` (None when the list does not fit that depth).

    Deriving it is a Poseidon hash per listed key (about a minute for 75,000 keys in pure Python), so it is
    kept per process and on disk in the verifier's own cache (``$CAP_ZK_CACHE/gap-roots``, named by the
    sanctions root, key version and depth), the one piece of I/O here.
    """
    key = (lists.sanctions_root, lists.version.value, depth)
    if key not in _GAP_ROOTS:
        _GAP_ROOTS[key] = _stored_gap_root(lists, depth)
    return _GAP_ROOTS[key]


def _stored_gap_root(lists: ListsFile, depth: int) -> str | None:
    path = cache_dir() / "gap-roots" / f"{lists.sanctions_root[2:]}-{lists.version.value}-d{depth}"
    if path.is_file():
        text = path.read_text(encoding="ascii").strip()
        return text if text.startswith("0x") else None
    try:
        tree = GapTree((key248(bytes.fromhex(k[2:])) for k in lists.keys), depth)
    except InvalidInputError:
        return None
    root = field_hex(tree.root)
    atomic_write(path, root.encode("ascii"))
    return root


class ZkScheme:
    """The v3 parts of one verification: its rule context, the ``zk:*`` checks, the attested checks."""

    def __init__(self, trust: TrustAnchors) -> None:
        self.trust = trust
        self.outcomes: dict[str, tuple[ScreeningEvidence, ScreeningCheck]] = {}

    def context(self, proof: Proof, trusted: TrustedLists | None) -> PublicContext:
        # No listed names: they serve v2's possible-match checks only (a dict of 75,000 names cost 24 ms per
        # verification), and a v3 proof carries no possible matches.
        version = trusted.lists.version if trusted is not None else None
        return ZkPublicContext(self, proof, trusted, None, version)

    def check(
        self,
        which: str,
        ev: ScreeningEvidence,
        commitment: ScreeningCommitment,
        trusted: TrustedLists | None,
        counts_high_risk: bool,
    ) -> ScreeningCheck:
        """Check one list's evidence and remember the outcome for :meth:`bindings`. Suppliers are counted
        against the HIGH jurisdictions of the trusted lists when the manifest names their jurisdiction root
        (``counts_high_risk``), UBOs against none."""
        root = gap_root(trusted.lists, ev.depth) if trusted is not None else None
        high_risk = (
            high_risk_jurisdictions(trusted.lists)
            if which == "suppliers" and counts_high_risk and trusted is not None
            else ()
        )
        result = check_screening(
            ev,
            commitment,
            self.trust.pinned_vks(),
            [root] if root is not None else [],
            high_risk,
            allow_development=self.trust.allow_dev_vk,
        )
        self.outcomes[which] = (ev, result)
        return result

    def bindings(self, proof: Proof) -> list[Check]:
        """The scalar bindings of v2 (counts, tier, high-risk), the signed commitments against the disclosed
        counts, and one ``zk:*`` check per screened list (or per failed rule)."""
        checks = [c for bind in SCALAR_BINDINGS for c in bind(proof)]
        checks += _commitment_checks(proof) + _possible_match_count(proof)
        for which, (ev, result) in self.outcomes.items():
            checks += _outcome_checks(which, ev, result, self.trust)
        proved = self._proved_suppliers()
        if proved is not None:
            checks += _attribute_checks(proof, proved)
        return checks

    def _proved_suppliers(self) -> ScreeningEvidence | None:
        """The suppliers' evidence when it verified: its max tier and high-risk count are proved."""
        ev, result = self.outcomes.get("suppliers", (None, None))
        return ev if result is not None and result.ok else None

    def attested(self, proof: Proof) -> list[Check]:
        return attested_v3(proof, attributes_proved=self._proved_suppliers() is not None)


class ZkPublicContext(PublicContext):
    """v2's public context whose screening re-check is the zero-knowledge one."""

    def __init__(
        self,
        scheme: ZkScheme,
        proof: Proof,
        trusted: TrustedLists | None,
        names: dict[str, tuple[str, ...]] | None,
        version: KeyVersion | None,
    ) -> None:
        super().__init__(proof.manifest, proof.public, names, version)
        self.scheme, self.trusted = scheme, trusted

    def screen(self, lhs: str, rhs: str, claimed: dict[str, Any] | None) -> tuple[bool, str, dict[str, Any]]:
        root_text, expected, which = self.lookup(rhs), self.lookup(lhs), SCREENED.get(lhs)
        if which is None or not isinstance(expected, ListLength):
            raise MissingInputError(f"{lhs!r} cannot be screened", field=lhs)
        if (
            not isinstance(claimed, dict)
            or claimed.get("list_root") != root_text
            or ZK_EVIDENCE not in claimed
        ):
            raise EvidenceError(
                f"evidence for {lhs} is not zero-knowledge evidence over the manifest's {rhs}"
            )
        version = check_key_version(claimed)
        if self.key_version is not None and version is not self.key_version:
            raise EvidenceError(
                f"evidence for {lhs} keys names under {version.value}, the trusted list under "
                f"{self.key_version.value}"
            )
        screening = self.manifest.screening
        commitment = getattr(screening, which) if screening is not None else None
        if commitment is None:
            raise EvidenceError(f"the signed manifest carries no screening commitment for {which}")
        try:
            ev = ScreeningEvidence.model_validate(claimed[ZK_EVIDENCE])
        except ValidationError as exc:
            raise EvidenceError(
                f"zero-knowledge evidence for {which} is malformed: {exc.errors()[0]['msg']}"
            ) from None
        counts_high_risk = self.manifest.jurisdiction_root is not None
        result = self.scheme.check(which, ev, commitment, self.trusted, counts_high_risk)
        if not result.ok:
            codes = ", ".join(f"zk:{which}:{code.value}" for code, _ in result.failures)
            raise EvidenceError(f"zero-knowledge screening of {which} does not verify ({codes})")
        message = f"0 of {ev.count} {which} are on the sanctions list (proved in zero knowledge)"
        return True, message, claimed


def _commitment_checks(proof: Proof) -> list[Check]:
    screening, public = proof.manifest.screening, proof.public
    if screening is None:
        return [
            _integrity_failure(
                "zk:commitment",
                "a cap-proof.v3 manifest must sign the screening commitment; this one has none",
            )
        ]
    out = []
    for which, count_name in (("suppliers", "supplier_count"), ("ubos", "ubo_count")):
        commitment = getattr(screening, which)
        if commitment is not None and public.get(count_name) != commitment.count:
            out.append(
                _integrity_failure(
                    f"public:{count_name}",
                    f"{count_name} {public.get(count_name)!r} but the signed screening commitment holds "
                    f"{commitment.count} {which}",
                )
            )
    return out


def _attribute_checks(proof: Proof, ev: ScreeningEvidence) -> list[Check]:
    """The disclosed max tier and high-risk count against the values the suppliers' proofs output."""
    public, out = proof.public, []
    if public.get("max_supplier_tier") != ev.max_tier:
        out.append(
            _integrity_failure(
                "zk:suppliers:max_tier",
                f"max_supplier_tier {public.get('max_supplier_tier')!r} but the proofs show the committed "
                f"suppliers' highest tier is {ev.max_tier}",
            )
        )
    name = "high_risk_supplier_count"
    if name in public and public[name] != ev.high_risk_count:
        out.append(
            _integrity_failure(
                "zk:suppliers:high_risk_count",
                f"{name} {public[name]!r} but the proofs count {ev.high_risk_count} committed suppliers in "
                f"{', '.join(ev.high_risk) or 'no'} high-risk jurisdictions",
            )
        )
    return out


def _integrity_failure(check_id: str, message: str) -> Check:
    return Check(id=check_id, kind=CheckKind.INTEGRITY, status=CheckStatus.FAIL, message=message)


def _possible_match_count(proof: Proof) -> list[Check]:
    value = proof.public.get(POSSIBLE_MATCH_COUNT)
    if proof.manifest.sanctions_root is None or (type(value) is int and value >= 0):
        return []
    return [
        _integrity_failure(
            f"public:{POSSIBLE_MATCH_COUNT}",
            f"{POSSIBLE_MATCH_COUNT} is {value!r}, expected a count (integer ≥ 0)",
        )
    ]


def _outcome_checks(
    which: str, ev: ScreeningEvidence, result: ScreeningCheck, trust: TrustAnchors
) -> list[Check]:
    if not result.ok:
        return [
            Check(
                id=f"zk:{which}:{code.value}", kind=CheckKind.EVIDENCE, status=CheckStatus.FAIL, message=text
            )
            for code, text in result.failures
        ]
    pin = next(p for p in trust.vks if p.vk_hash == ev.vk_hash)
    dev = "" if pin.production else "; development vk, NOT FOR PRODUCTION (accepted: development allowed)"
    attributes = (
        f"; highest tier {ev.max_tier}, {ev.high_risk_count} in high-risk jurisdictions "
        f"({', '.join(ev.high_risk) or 'none listed'})"
        if which == "suppliers"
        else ""
    )
    return [
        Check(
            id=f"zk:{which}",
            kind=CheckKind.EVIDENCE,
            status=CheckStatus.OK,
            message=f"{ev.count} committed {which} proved outside the trusted list (gap root {ev.gap_root})"
            f"{attributes}: {len(ev.batches)} Groth16 proofs under vk {ev.vk_hash} ({pin.origin}){dev}",
        )
    ]


def _attested(name: str, message: str) -> Check:
    return Check(id=f"attested:{name}", kind=CheckKind.ATTESTED, status=CheckStatus.OK, message=message)


def attested_v3(proof: Proof, *, attributes_proved: bool = False) -> list[Check]:
    """What a v3 verifier still takes on the prover's signature (the rest is proved). The max tier and the
    high-risk count are proved when the suppliers' screening verified (``attributes_proved``)."""
    kid = proof.signature.kid if proof.signature else "the prover"
    kept = set() if attributes_proved else {"attested:max_supplier_tier", "attested:high_risk_supplier_count"}
    out = [c for c in attested_checks(proof) if c.id in kept]
    if proof.manifest.screening is None:
        return out
    return [
        _attested(
            "commitments_agree",
            "the Poseidon screening commitment holds the same records as the BLAKE3 supplier_root/ubo_root, "
            "with their tiers and jurisdictions (each leaf absorbs the record's BLAKE3 leaf; an auditor can "
            f"open one row): signed by {kid}",
        ),
        _attested(
            "screened_names",
            "each committed record's screening key is the key of its normalised name (normalisation runs "
            f"outside the circuit; that no key is listed is proved): signed by {kid}",
        ),
        *out,
        _attested(
            "possible_matches",
            f"{proof.public.get(POSSIBLE_MATCH_COUNT)} possible matches were found and reviewed by the "
            f"prover (v3 discloses only their count): signed by {kid}",
        ),
    ]
