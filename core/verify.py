"""Verification of a ``cap-proof.v2`` or ``v3`` (its own parts: :mod:`core.schemes`): every check real,
each reported with kind and status.

Integrity and signature checks fail in every mode; rule violations are judged by the mode
(strict/relaxed/audit); evidence is re-checked against the manifest's public roots. The report's
result is the worst check. ``verify_proof`` never raises on a bad proof: failures are results.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from core.checks import Check as Check
from core.checks import CheckKind as CheckKind
from core.commitments import company_root
from core.context import EvidenceError, PublicContext, selection_inputs
from core.digest import Digest, digests_equal
from core.enforce import record_enforcement, violation_status, violations_of, worst
from core.errors import CapError, InvalidInputError
from core.events import sink
from core.keyring import Keyring, key_acceptance
from core.manifest import Manifest, ProofInfo, check_manifest_signature
from core.modes import CheckStatus, EnforcementMode
from core.policy.ir import IrRule
from core.policy.select import active_rule_ids
from core.policy.v1 import rule_constraint
from core.proof import Proof, ProofForms, check_proof_signature, parse_proof_bytes
from core.rules import Outcome, RuleResult, evaluate_rule
from core.schemes import Scheme, scheme_for
from core.trust import (
    TrustAnchors,
    TrustedLists,
    cannot_evaluate,
    list_root_check,
    needs_lists,
    policy_pin_check,
    uses_lists,
)


class Report(BaseModel):
    model_config = ConfigDict(frozen=True)
    result: CheckStatus
    mode: EnforcementMode
    scheme: str | None = None
    policy_id: str | None = None
    subject: str | None = None
    kid: str | None = None
    checks: list[Check]

    @property
    def integrity_failed(self) -> bool:
        return any(
            c.status is CheckStatus.FAIL and c.kind in (CheckKind.INTEGRITY, CheckKind.SIGNATURE)
            for c in self.checks
        )


RegistryLookup = Callable[[Proof, ProofForms], Check]


def _ok(
    id_: str, kind: CheckKind, ok: bool, good: str, bad: str, fail: CheckStatus = CheckStatus.FAIL
) -> Check:
    return Check(id=id_, kind=kind, status=CheckStatus.OK if ok else fail, message=good if ok else bad)


def report_for_unreadable(exc: CapError, mode: EnforcementMode) -> Report:
    check = Check(
        id="proof_format", kind=CheckKind.INTEGRITY, status=CheckStatus.FAIL, message=exc.diagnostics()
    )
    return Report(result=CheckStatus.FAIL, mode=mode, checks=[check])


def _ir_checks(proof: Proof, forms: ProofForms) -> list[Check]:
    ir = proof.ir
    recomputed = forms.ir_hash()
    return [
        _ok(
            "ir_hash",
            CheckKind.INTEGRITY,
            digests_equal(recomputed, ir.ir_hash) and proof.ir_hash == ir.ir_hash,
            "IR hash recomputed and matches",
            f"IR hash mismatch: recomputed {recomputed}, proof says {proof.ir_hash}",
        ),
        _ok(
            "policy_hash",
            CheckKind.POLICY,
            ir.policy_hash == proof.manifest.policy.hash and ir.policy_id == proof.policy_id,
            "IR was compiled from the manifest's policy",
            f"IR policy hash {ir.policy_hash} is not the manifest's {proof.manifest.policy.hash}",
        ),
    ]


def _root_check(manifest: Manifest) -> Check:
    try:
        s = Digest.parse(manifest.supplier_root, field="supplier_root").raw
        u = Digest.parse(manifest.ubo_root, field="ubo_root").raw
    except InvalidInputError as exc:
        return Check(
            id="company_root", kind=CheckKind.INTEGRITY, status=CheckStatus.FAIL, message=exc.diagnostics()
        )
    derived = "0x" + company_root(s, u, manifest.root_scheme).hex()
    return _ok(
        "company_root",
        CheckKind.INTEGRITY,
        digests_equal(derived, manifest.company_commitment_root),
        f"company root derives from supplier and UBO roots ({manifest.root_scheme.value})",
        f"company root {manifest.company_commitment_root} is not derived from the supplier/UBO roots",
    )


def _differing(a: BaseModel, b: BaseModel, prefix: str = "") -> list[str]:
    """The dotted names of the fields where ``a`` and ``b`` differ, in field order."""
    out: list[str] = []
    for name in type(a).model_fields:
        x, y = getattr(a, name), getattr(b, name)
        if x == y:
            continue
        if isinstance(x, BaseModel) and type(x) is type(y):
            out += _differing(x, y, f"{prefix}{name}.")
        else:
            out.append(prefix + name)
    return out


# Filled in when the proof is built (its signatures and the prover's verdict), so a manifest published
# before the proof (``cap manifest build``) legitimately differs there; every other field must match.
_SET_AT_BUILD = {"signatures": [], "proof": ProofInfo(), "screening": None}


def _manifest_match(proof: Proof, given: Manifest) -> Check:
    """The given manifest must equal the proof's in every signed field but those set at build."""
    bad = _differing(given.model_copy(update=_SET_AT_BUILD), proof.manifest.model_copy(update=_SET_AT_BUILD))
    return _ok(
        "manifest_match",
        CheckKind.INTEGRITY,
        not bad,
        "given manifest matches the proof",
        f"given manifest differs from the proof's in {', '.join(bad)}",
    )


def _manifest_key_check(
    proof: Proof, keyring: Keyring, mode: EnforcementMode, now: datetime, proof_kid: str
) -> list[Check]:
    """The manifest signers' key status, judged like the proof signer's; one check when a manifest
    signer is not the proof signer (whose status ``key_status`` already reports)."""
    kids = list(dict.fromkeys(s.kid for s in proof.manifest.signatures if s.kid != proof_kid))
    if not kids:
        return []
    judged = [(kid, key_acceptance(keyring, kid, mode, now)) for kid in kids]
    return [
        Check(
            id="manifest_key_status",
            kind=CheckKind.KEY,
            status=worst(a.status for _, a in judged),
            message="; ".join(f"manifest key {kid}: {a.reason}" for kid, a in judged),
        )
    ]


def _signature_checks(
    proof: Proof, keyring: Keyring, mode: EnforcementMode, now: datetime, forms: ProofForms
) -> list[Check]:
    sig = proof.signature
    if sig is None:
        return [
            Check(
                id="proof_signature",
                kind=CheckKind.SIGNATURE,
                status=CheckStatus.FAIL,
                message="proof is not signed",
            )
        ]
    keys = {k.kid: k.public_key for k in keyring.keys}
    acceptance = key_acceptance(keyring, sig.kid, mode, now)
    checks = [
        Check(
            id="key_status",
            kind=CheckKind.KEY,
            status=acceptance.status,
            message=f"key {sig.kid}: {acceptance.reason}",
        )
    ]
    if sig.kid not in keys:
        checks.append(
            Check(
                id="proof_signature",
                kind=CheckKind.SIGNATURE,
                status=CheckStatus.FAIL,
                message=f"unknown key id {sig.kid}: signature cannot be checked",
            )
        )
        return checks
    checks.append(
        _ok(
            "proof_signature",
            CheckKind.SIGNATURE,
            check_proof_signature(proof, keys[sig.kid], forms.signing_bytes()),
            f"Ed25519 signature by {sig.kid} is valid",
            "proof signature is invalid",
        )
    )
    if (metrics := sink()) is not None:
        metrics.SIGNATURES_VERIFIED.labels(kid=sig.kid, status=worst(c.status for c in checks).value).inc()
    checks += _manifest_key_check(proof, keyring, mode, now, sig.kid)
    msigs, manifest_bytes = proof.manifest.signatures, forms.manifest_signing_bytes()
    manifest_ok = bool(msigs) and all(
        s.kid in keys and check_manifest_signature(proof.manifest, s, keys[s.kid], manifest_bytes)
        for s in msigs
    )
    checks.append(
        _ok(
            "manifest_signature",
            CheckKind.SIGNATURE,
            manifest_ok,
            "manifest signature is valid",
            "manifest signature is missing or invalid",
        )
    )
    return checks


def _rule_checks(
    proof: Proof, mode: EnforcementMode, trust: TrustAnchors, now: datetime, scheme: Scheme
) -> list[Check]:
    claimed = {r.rule_id: r for r in proof.rules}
    try:
        active = set(active_rule_ids(proof.ir, selection_inputs(proof.public)))
    except InvalidInputError as exc:
        return [
            Check(
                id="rule_selection", kind=CheckKind.POLICY, status=CheckStatus.FAIL, message=exc.diagnostics()
            )
        ]
    checks: list[Check] = []
    trusted: TrustedLists | None = None
    if needs_lists(proof.manifest, proof.ir, active):
        list_check, trusted = list_root_check(proof.manifest, trust, mode, now)
        checks.append(list_check)
    ctx = scheme.context(proof, trusted)
    extra = sorted(set(claimed) - active)
    if extra:
        checks.append(
            Check(
                id="rule_results",
                kind=CheckKind.INTEGRITY,
                status=CheckStatus.FAIL,
                message=f"results for rules that are not active in the IR: {', '.join(extra)}",
            )
        )
    untrusted = bool(checks) and trusted is None
    for rule in proof.ir.rules:
        if rule.id in active:
            checks.extend(_one_rule(rule, claimed.get(rule.id), ctx, mode, untrusted and uses_lists(rule)))
    return checks


def _one_rule(
    rule: IrRule, claim: RuleResult | None, ctx: PublicContext, mode: EnforcementMode, untrusted: bool
) -> list[Check]:
    """The checks of one rule; a rule over untrusted lists cannot be evaluated (fail-closed)."""
    checks = _judge_rule(rule, claim, ctx, mode)
    if not untrusted:
        return checks
    return [cannot_evaluate(rule.id, mode) if c.kind is CheckKind.RULE else c for c in checks]


def _judge_rule(
    rule: IrRule, claim: RuleResult | None, ctx: PublicContext, mode: EnforcementMode
) -> list[Check]:
    rid = rule.id
    if claim is None:
        return [
            Check(
                id=f"rule:{rid}",
                kind=CheckKind.INTEGRITY,
                status=CheckStatus.FAIL,
                message=f"proof has no result for rule {rid}",
            )
        ]
    try:
        redo = evaluate_rule(rule, ctx, claim.evidence)
    except EvidenceError as exc:
        return [
            Check(id=f"evidence:{rid}", kind=CheckKind.EVIDENCE, status=CheckStatus.FAIL, message=exc.message)
        ]
    if redo.result is not claim.result:
        return [
            Check(
                id=f"evidence:{rid}",
                kind=CheckKind.EVIDENCE,
                status=CheckStatus.FAIL,
                message=f"proof claims {claim.result.value} but re-evaluation gives {redo.result.value}",
            )
        ]
    if redo.evidence != claim.evidence or redo.severity is not claim.severity:
        return [
            Check(
                id=f"evidence:{rid}",
                kind=CheckKind.EVIDENCE,
                status=CheckStatus.FAIL,
                message=f"recorded evidence {claim.evidence} is not what the disclosed inputs give "
                f"({redo.evidence})",
            )
        ]
    out = []
    near = redo.evidence.get("possible_matches") if isinstance(redo.evidence, dict) else None
    if near:
        out.append(
            Check(
                id=f"possible_match:{rid}",
                kind=CheckKind.EVIDENCE,
                status=CheckStatus.WARN,
                message=f"{len(near)} possible sanctions matches need human review",
            )
        )
    if redo.result is Outcome.PASS:
        return [
            Check(id=f"rule:{rid}", kind=CheckKind.RULE, status=CheckStatus.OK, message=redo.message),
            *out,
        ]
    (violation,) = violations_of([redo])
    status = violation_status(violation.severity, mode)
    return [
        Check(
            id=f"rule:{rid}",
            kind=CheckKind.RULE,
            status=status,
            message=f"{violation.severity.value} violation: {redo.message}",
        ),
        *out,
    ]


def verify_proof(
    proof: Proof,
    *,
    keyring: Keyring,
    mode: EnforcementMode,
    now: datetime,
    trust: TrustAnchors,
    manifest: Manifest | None = None,
    registry: RegistryLookup | None = None,
) -> Report:
    """Run every check on ``proof`` against the verifier's keyring and trust anchors and return the
    report (never raises for a bad proof)."""
    forms, scheme = ProofForms(proof), scheme_for(proof, trust)
    checks = [*_ir_checks(proof, forms), _root_check(proof.manifest)]
    pin = policy_pin_check(proof.manifest, trust)
    if pin is not None:
        checks.append(pin)
    if manifest is not None:
        checks.append(_manifest_match(proof, manifest))
    checks += _signature_checks(proof, keyring, mode, now, forms)
    checks += _enforced_rule_checks(proof, mode, trust, now, scheme)
    checks += scheme.bindings(proof)
    checks += scheme.attested(proof)
    if registry is not None:
        checks.append(registry(proof, forms))
    report = Report(
        result=worst(c.status for c in checks),
        mode=mode,
        scheme=proof.schema_,
        policy_id=proof.policy_id,
        subject=proof.manifest.subject,
        kid=proof.signature.kid if proof.signature else None,
        checks=checks,
    )
    if (metrics := sink()) is not None:
        metrics.VERIFY_RESULTS.labels(report.result.value).inc()
    return report


def _enforced_rule_checks(
    proof: Proof, mode: EnforcementMode, trust: TrustAnchors, now: datetime, scheme: Scheme
) -> list[Check]:
    """:func:`_rule_checks`, metered as one enforcement decision (v1 rules counted by constraint)."""
    start = time.perf_counter()
    checks = _rule_checks(proof, mode, trust, now, scheme)
    v1 = proof.manifest.policy.version == "lksg.v1"
    rule_ids = [c.id.removeprefix("rule:") for c in checks if c.kind is CheckKind.RULE and c.status.severity]
    constraints = [(rule_constraint(r) if v1 else None) or r for r in rule_ids]
    record_enforcement(constraints, worst(c.status for c in checks), mode, time.perf_counter() - start)
    return checks


def verify_proof_bytes(
    data: bytes,
    *,
    source: str = "<proof>",
    keyring: Keyring,
    mode: EnforcementMode,
    now: datetime,
    trust: TrustAnchors,
    manifest: Manifest | None = None,
    registry: RegistryLookup | None = None,
) -> Report:
    """Parse (format + canonical form checked) and verify; an unreadable proof is a FAIL report."""
    try:
        proof = parse_proof_bytes(data, source)
    except CapError as exc:
        if (metrics := sink()) is not None:
            metrics.VERIFY_RESULTS.labels(CheckStatus.FAIL.value).inc()
        return report_for_unreadable(exc, mode)
    return verify_proof(
        proof, keyring=keyring, mode=mode, now=now, trust=trust, manifest=manifest, registry=registry
    )


_PROVED_KINDS = frozenset(
    {
        CheckKind.INTEGRITY,
        CheckKind.SIGNATURE,
        CheckKind.KEY,
        CheckKind.POLICY,
        CheckKind.RULE,
        CheckKind.EVIDENCE,
    }
)


def summary_line(report: Report) -> str:
    """One line: what was proved (checks recomputed and ok), what was attested, what did not hold."""
    proved = [c.id for c in report.checks if c.kind in _PROVED_KINDS and c.status is CheckStatus.OK]
    attested = [c.id.removeprefix("attested:") for c in report.checks if c.kind is CheckKind.ATTESTED]
    failed = [c.id for c in report.checks if c.status is not CheckStatus.OK]
    line = f"proved: {', '.join(proved) or 'nothing'}; "
    line += f"attested (prover's signature): {', '.join(attested) or 'nothing'}"
    return line + (f"; not ok: {', '.join(failed)}" if failed else "")
