"""Trust anchors on the verifier's side: which list roots and which policies a verifier accepts.

A proof names its own sanctions and jurisdiction roots; a verifier must not take them on the proof's
word. It accepts a root only if it is the root of lists *it* holds (installed in
``<data>/lists/lists.json`` or given with ``cap verify --lists``) and only while those lists are fresh
(built no longer than ``max_list_age`` ago, from the build time the signed manifest carries). Anything
else means the sanctions rule cannot be evaluated: a high violation, fail-closed (SPEC §3, §8).
A verifier may also pin the policies it requires. This module does no I/O (``core.anchors`` loads).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from core.checks import Check, CheckKind
from core.enforce import violation_status
from core.manifest import ListsInfo, ListSourceInfo, Manifest
from core.modes import CheckStatus, EnforcementMode
from core.policy.ir import IrRule, PolicyIR, Severity
from core.sanctions import ListFormat, ListSource
from core.screening import ListsFile
from core.zk.evidence import TrustedVk
from core.zk.groth16 import VerifyingKey

DEFAULT_MAX_LIST_AGE = timedelta(days=14)
CLOCK_SKEW = timedelta(minutes=5)
PUBLISHERS = {
    ListFormat.OFAC: "OFAC (U.S. Treasury)",
    ListFormat.UN: "UN Security Council",
    ListFormat.CSV: "unnamed (simple CSV)",
}
LIST_INPUTS = frozenset({"sanctions_root", "jurisdiction_root", "high_risk_supplier_count"})
INSTALL_HINT = (
    "install trusted lists with `cap lists build ... --install` or `cap lists refresh`, "
    "or pass `cap verify --lists FILE`"
)


def _source_infos(source: ListSource) -> list[ListSourceInfo]:
    publisher = PUBLISHERS[source.format]
    infos = [
        ListSourceInfo(publisher=publisher, format=source.format, file=source.path, sha3_256=source.sha3_256)
    ]
    if source.alt_path is not None and source.alt_sha3_256 is not None:
        infos.append(
            ListSourceInfo(
                publisher=publisher, format=source.format, file=source.alt_path, sha3_256=source.alt_sha3_256
            )
        )
    return infos


def lists_info(lists: ListsFile) -> ListsInfo:
    """What a manifest carries about ``lists``: build time and every source file with its digest."""
    return ListsInfo(
        generated_at=lists.generated_at, sources=[i for s in lists.sources for i in _source_infos(s)]
    )


class TrustedLists(BaseModel):
    """Lists a verifier holds, and where they came from (``installed <path>`` or ``--lists <path>``)."""

    model_config = ConfigDict(frozen=True)
    origin: str
    lists: ListsFile

    def describe(self) -> str:
        sources = ", ".join(f"{s.format.value} {s.path} {s.sha3_256}" for s in self.lists.sources)
        return f"{self.lists.sanctions_root} ({self.origin}, built {self.lists.generated_at}: {sources})"


class PinnedPolicy(BaseModel):
    """A policy hash the verifier requires, and where the pin came from."""

    model_config = ConfigDict(frozen=True)
    hash: str
    origin: str


class PinnedVk(BaseModel):
    """A ``cap-proof.v3`` verifying key the verifier accepts, for one circuit shape (``cap-zk-pin.v1``).

    ``production`` is False for development setups (local phase 1, public beacon): anyone can forge
    proofs under them, so they count only where the verifier explicitly allows development keys."""

    model_config = ConfigDict(frozen=True)
    format: str = "cap-zk-pin.v1"
    origin: str = ""
    circuit: str
    batch_size: int
    depth: int
    production: bool
    vk_hash: str
    vk: VerifyingKey

    def trusted(self) -> TrustedVk:
        return TrustedVk(self.vk, self.circuit, self.batch_size, self.depth, production=self.production)


class TrustAnchors(BaseModel):
    """Everything a verifier trusts besides its keyring. No lists → every list root is untrusted; no
    pinned vks → every v3 proof is untrusted (``allow_dev_vk``: development vks count, tests/demos only)."""

    model_config = ConfigDict(frozen=True)
    lists: tuple[TrustedLists, ...] = ()
    max_list_age: timedelta = DEFAULT_MAX_LIST_AGE
    policies: tuple[PinnedPolicy, ...] = ()
    vks: tuple[PinnedVk, ...] = ()
    allow_dev_vk: bool = False

    def pinned_vks(self) -> dict[str, TrustedVk]:
        """vk hash → pinned key (a pin whose key does not hash to its name is left out)."""
        return {p.vk_hash: p.trusted() for p in self.vks if p.vk.vk_hash == p.vk_hash}

    def find(self, manifest: Manifest) -> TrustedLists | None:
        """The trusted lists whose roots are the manifest's (its jurisdiction root too, if it has one)."""
        for trusted in self.lists:
            lists = trusted.lists
            if lists.sanctions_root != manifest.sanctions_root:
                continue
            if manifest.jurisdiction_root is None or manifest.jurisdiction_root == lists.jurisdiction_root:
                return trusted
        return None


def uses_lists(rule: IrRule) -> bool:
    """True if the rule reads a list root or a scalar computed against a list (``*_present`` rules only
    ask whether the manifest names a root, which the manifest shows whether or not it is trusted)."""
    names = {o.get("var") for o in (rule.lhs, rule.rhs) if isinstance(o, dict)}
    return bool(names & LIST_INPUTS)


def needs_lists(manifest: Manifest, ir: PolicyIR, active: Iterable[str]) -> bool:
    """Does judging this proof depend on lists? (roots in the manifest or an active rule over them)."""
    wanted = set(active)
    rules = [r for r in ir.rules if r.id in wanted]
    return (
        manifest.sanctions_root is not None
        or manifest.jurisdiction_root is not None
        or any(uses_lists(r) for r in rules)
    )


def _parse_time(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def _roots(manifest: Manifest) -> str:
    if manifest.sanctions_root is None:
        text = "manifest has no sanctions_root"
        return text + (
            f" (jurisdiction root {manifest.jurisdiction_root})" if manifest.jurisdiction_root else ""
        )
    text = f"sanctions root {manifest.sanctions_root}"
    return text + (f" (jurisdiction root {manifest.jurisdiction_root})" if manifest.jurisdiction_root else "")


def _problem(
    manifest: Manifest, anchors: TrustAnchors, now: datetime
) -> tuple[str | None, TrustedLists | None]:
    """Why the manifest's lists are not trusted (None if they are), and the matching trusted lists."""
    if not anchors.lists:
        return f"{_roots(manifest)}: cannot be checked, no trusted lists; {INSTALL_HINT}", None
    trusted = anchors.find(manifest)
    if trusted is None:
        known = "; ".join(t.describe() for t in anchors.lists)
        return f"proof's {_roots(manifest)} is not a trusted root; trusted roots: {known}", None
    carried = manifest.lists
    built = _parse_time(carried.generated_at) if carried is not None else None
    if built is None:
        return (
            f"proof's {_roots(manifest)} is trusted but the manifest does not say when its lists were built",
            None,
        )
    if built > now + CLOCK_SKEW:
        return f"proof's lists claim to be built in the future ({built:%Y-%m-%dT%H:%M:%SZ})", None
    age = now - built
    if age > anchors.max_list_age:
        return (
            f"proof's lists ({_roots(manifest)}, built {built:%Y-%m-%dT%H:%M:%SZ}) are {age.days} days old, "
            f"older than the maximum {anchors.max_list_age.days} days; trusted: {trusted.describe()}",
            None,
        )
    return None, trusted


def list_root_check(
    manifest: Manifest, anchors: TrustAnchors, mode: EnforcementMode, now: datetime
) -> tuple[Check, TrustedLists | None]:
    """The ``list_root`` check and, when it passes, the trusted lists the proof was screened against.

    Untrusted or stale lists mean the list rules cannot be evaluated: a high violation (fail-closed).
    """
    problem, trusted = _problem(manifest, anchors, now)
    if problem is not None:
        status = violation_status(Severity.HIGH, mode)
        return Check(id="list_root", kind=CheckKind.POLICY, status=status, message=problem), None
    assert trusted is not None
    message = f"proof's {_roots(manifest)} is trusted: {trusted.describe()}"
    return Check(id="list_root", kind=CheckKind.POLICY, status=CheckStatus.OK, message=message), trusted


def cannot_evaluate(rule_id: str, mode: EnforcementMode) -> Check:
    """A list rule judged without trusted lists: high violation (fail-closed)."""
    return Check(
        id=f"rule:{rule_id}",
        kind=CheckKind.RULE,
        status=violation_status(Severity.HIGH, mode),
        message="high violation: cannot be evaluated without trusted lists (see list_root)",
    )


def policy_pin_check(manifest: Manifest, anchors: TrustAnchors) -> Check | None:
    """``policy_pin``: the proof's policy is one the verifier requires (None when nothing is pinned)."""
    if not anchors.policies:
        return None
    pinned = {p.hash for p in anchors.policies}
    ok = manifest.policy.hash in pinned
    known = ", ".join(f"{p.hash} ({p.origin})" for p in anchors.policies)
    return Check(
        id="policy_pin",
        kind=CheckKind.POLICY,
        status=CheckStatus.OK if ok else CheckStatus.FAIL,
        message=f"policy {manifest.policy.name} {manifest.policy.hash} "
        + (f"is pinned ({known})" if ok else f"is not a required policy; required: {known}"),
    )
