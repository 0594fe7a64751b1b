"""A small proving world built from core only: fixed seeds, a fixed clock, no files.

Used by unit tests of proof build and verification (the CLI tests build theirs through ``cap``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.commitments import RootScheme, commit, parse_suppliers, parse_ubos
from core.keyring import Keyring, KeyringEntry, bootstrap_keyring
from core.keys import KeyStatus, build_metadata
from core.manifest import Manifest, PolicyInfo, build_manifest
from core.modes import EnforcementMode
from core.name_keys import KeyVersion
from core.policy.compile import compile_policy
from core.policy.load import load_policy_text
from core.prover import ProofBuild, build_proof
from core.sanctions import ListFormat, ListSource, RiskLevel, SanctionsEntry
from core.screening import ListsFile, SanctionsList, build_lists
from core.signing import Ed25519Signer
from core.trust import TrustAnchors, TrustedLists, lists_info

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SEED = bytes(range(32))  # a test constant, not a secret
SUPPLIERS = (
    "name,jurisdiction,tier\nACME GmbH,DE,1\nGlobal Supply Inc,US,1\nEastern Trading,CN,2\n"
    "Nordic Materials AB,SE,1\nSouth Asian Textiles,BD,2\n"
)
UBOS = "name,birthdate,citizenship\nMax Mustermann,1970-05-15,DE\nJane Doe,1985-11-22,US\n"
POLICY = """version: lksg.v1
name: Test Policy
created_at: "2025-11-06T10:00:00Z"
constraints:
  require_at_least_one_ubo: true
  supplier_count_max: 10
  ubo_count_min: 1
  require_statement_roots: [sanctions_root]
  no_sanctioned_suppliers: true
  no_sanctioned_ubos: true
  max_high_risk_suppliers: 0
  max_tier: 3
"""
LISTED = (
    SanctionsEntry(
        source="test", entry_id="1", primary_name="HOLDING, Petrov Industrial", aliases=("Petrov Holding",)
    ),
    SanctionsEntry(source="test", entry_id="2", primary_name="Kestrel Maritime Services"),
    SanctionsEntry(source="test", entry_id="3", primary_name="Ivan Sidorov"),
)
TEST_SOURCE = ListSource(path="test.csv", format=ListFormat.CSV, entries=3, sha3_256="sha3-256:" + "ab" * 32)
HIGH_RISK = {"IR": RiskLevel.HIGH, "KP": RiskLevel.HIGH, "CN": RiskLevel.MEDIUM}


@dataclass
class World:
    suppliers_csv: str = SUPPLIERS
    ubos_csv: str = UBOS
    policy_text: str = POLICY
    scheme: RootScheme = RootScheme.MERKLE
    listed: tuple[SanctionsEntry, ...] = LISTED
    with_lists: bool = True
    key_version: KeyVersion = KeyVersion.V1
    lists_built_at: datetime = NOW
    high_risk: dict[str, RiskLevel] | None = field(default_factory=lambda: dict(HIGH_RISK))
    signer: Ed25519Signer = field(default_factory=lambda: Ed25519Signer.from_seed(SEED))

    def __post_init__(self) -> None:
        self.suppliers = parse_suppliers(self.suppliers_csv)
        self.ubos = parse_ubos(self.ubos_csv)
        self.compiled = compile_policy(load_policy_text(self.policy_text, "policy.yml"))
        self.lists = (
            SanctionsList.from_entries(self.listed, ["test"], self.key_version) if self.with_lists else None
        )
        self.lists_file: ListsFile | None = (
            build_lists(self.lists, [TEST_SOURCE], self.lists_built_at, self.high_risk)
            if self.lists
            else None
        )
        self.trust = TrustAnchors(
            lists=(TrustedLists(origin="test", lists=self.lists_file),) if self.lists_file else ()
        )
        meta = build_metadata(self.signer.public_key_b64, "Test Co", NOW)
        self.keyring: Keyring = bootstrap_keyring(meta, NOW, actor="test")

    def manifest(self) -> Manifest:
        c = commit(self.suppliers, self.ubos, self.scheme, "2026-03-01T12:00:00Z")
        info = PolicyInfo(name=self.compiled.policy_id, version="lksg.v1", hash=self.compiled.policy_hash)
        return build_manifest(
            c,
            info,
            subject="LEI-TEST",
            created_at="2026-03-01T12:00:00Z",
            sanctions_root=self.lists.root_hex if self.lists else None,
            jurisdiction_root=self.lists_file.jurisdiction_root if self.lists_file else None,
            lists=lists_info(self.lists_file) if self.lists_file else None,
        )

    def build(self, mode: EnforcementMode = EnforcementMode.STRICT, enforce: bool = False) -> ProofBuild:
        return build_proof(
            manifest=self.manifest(),
            ir=self.compiled.ir,
            suppliers=self.suppliers,
            ubos=self.ubos,
            lists=self.lists,
            high_risk=self.high_risk,
            mode=mode,
            enforce=enforce,
            signer=self.signer,
            created_at="2026-03-01T12:00:00Z",
            constraints=self.compiled.rule_constraints,
        )

    def keyring_with(self, status: KeyStatus) -> Keyring:
        entries = tuple(e.model_copy(update={"status": status}) for e in self.keyring.keys)
        return self.keyring.model_copy(update={"keys": entries})


def entry(kid_entry: KeyringEntry, **update: object) -> KeyringEntry:
    return kid_entry.model_copy(update=update)
