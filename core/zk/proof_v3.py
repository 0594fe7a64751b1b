"""Building a ``cap-proof.v3``: the v2 evaluation, with zero-knowledge screening evidence in place of keys.

The prover evaluates every rule on its real records exactly as for v2 (``core.prover.build_proof``).
Then, for the screening rules only, the evidence that disclosed each screened key is replaced by
:class:`~core.zk.evidence.ScreeningEvidence` (Groth16 proofs that every committed record's key lies in a gap
of the trusted list), and the manifest signs the matching :class:`~core.zk.evidence.ScreeningCommitments`
beside its untouched BLAKE3 roots. Near matches stay with the prover: the proof keeps only their count
(``public.possible_match_count``), which a verifier reports as attested. docs/formats/proof_v3.md.

A v3 proof can only show that no committed name is listed; when one is, building refuses (``v3_listed_name``)
and points to ``cap screen`` and ``--scheme v2``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import blake3

from core.commitments import Supplier, Ubo, ubo_leaf
from core.errors import InvalidInputError
from core.fsio import atomic_write
from core.name_keys import KeyVersion
from core.policy.ir import PolicyIR
from core.rules import Outcome, RuleResult
from core.screening import ListsFile, screening_key
from core.zk import prover
from core.zk.ceremony import Setup, dev_setup, open_setup, setup_circuit
from core.zk.evidence import ScreeningCommitments, ScreeningEvidence
from core.zk.gaptree import GapTree, key248
from core.zk.toolchain import cache_dir, compile_circuit
from core.zk.witness import Circuit, ScreenedLeaf, blake_field, derive_salt, risk_words

ZK_EVIDENCE = "zk"
"""The key of a v3 screening rule's evidence that holds the :class:`ScreeningEvidence`."""
SCREENED = {"supplier_hashes": "suppliers", "ubo_hashes": "ubos"}
SALT_SEED_FILE = "zk-salt-seed.hex"
DEV_BATCH_SIZE = 2
_UBO_SEED_CONTEXT = "cap-verifier 2026 zk ubo salt seed v1"


@dataclass(frozen=True)
class ZkProving:
    """What proving needs: the setup, the gap tree of the lists screened against, the key version, the
    prover's secret salt seed and the batch-proof cache."""

    setup: Setup
    gaps: GapTree
    high_risk: tuple[str, ...]
    version: KeyVersion
    salt_seed: bytes
    cache: Path | None

    @property
    def development(self) -> bool:
        return not bool(self.setup.transcript["phase1"]["production"])


def dev_depth(lists: ListsFile) -> int:
    """The smallest gap-tree depth (at least 3) whose leaves hold every gap of ``lists``."""
    return max(3, len(lists.keys).bit_length())


def load_salt_seed(keys_dir: Path) -> bytes:
    """The prover's secret salt seed in ``keys_dir`` (never backed up: backups take only ``*.json`` there),
    created with fresh randomness on first use."""
    path = keys_dir / SALT_SEED_FILE
    if not path.exists():
        atomic_write(path, secrets.token_bytes(32).hex().encode("ascii"), mode=0o600)
    return prover.read_salt_seed(path)


def zk_proving(
    lists: ListsFile,
    salt_seed: bytes,
    *,
    setup_dir: Path | None = None,
    batch_size: int = DEV_BATCH_SIZE,
    cache: Path | None = None,
) -> ZkProving:
    """Proving for ``lists``: under a finished setup directory, or the cached development setup of the
    smallest circuit that fits the lists (NOT FOR PRODUCTION). Raises InvalidInputError when the setup's
    gap tree is too shallow for the lists."""
    if setup_dir is None:
        setup = dev_setup(Circuit(batch_size, dev_depth(lists)))
    else:
        setup = open_setup(compile_circuit(setup_circuit(setup_dir)), setup_dir)
    gaps = prover.gap_tree(lists, setup.compiled.circuit.depth)
    high_risk = prover.high_risk_jurisdictions(lists)
    risk_words(high_risk, setup.compiled.circuit)  # refuse too many HIGH jurisdictions before any proving
    return ZkProving(setup, gaps, high_risk, lists.version, salt_seed, cache or cache_dir() / "proofs")


def ubo_leaves(ubos: Sequence[Ubo], salt_seed: bytes, version: KeyVersion) -> list[ScreenedLeaf]:
    """The circuit's view of each committed UBO: salts from a seed derived for UBOs (never a supplier's); a
    UBO has no tier and no jurisdiction (both 0), and is counted against no high-risk set."""
    seed = blake3.blake3(salt_seed, derive_key_context=_UBO_SEED_CONTEXT).digest()
    return [
        ScreenedLeaf(key248(screening_key(u.name, version)), derive_salt(seed, i), blake_field(ubo_leaf(u)))
        for i, u in enumerate(ubos)
    ]


def _screened_lists(ir: PolicyIR, results: Sequence[RuleResult]) -> dict[str, str]:
    """rule id → ``suppliers``/``ubos`` for each screening result."""
    lhs = {r.id: r.lhs.get("var") for r in ir.rules if isinstance(r.lhs, dict)}
    out: dict[str, str] = {}
    for r in results:
        if "list_root" in r.evidence:
            which = SCREENED.get(str(lhs.get(r.rule_id)))
            if which is None:
                raise InvalidInputError(
                    f"rule {r.rule_id} screens a list v3 cannot prove",
                    field=r.rule_id,
                    expected="suppliers/ubos",
                )
            out[r.rule_id] = which
    return out


def _refuse_listed(results: Sequence[RuleResult], screened: dict[str, str]) -> None:
    failed = [r for r in results if r.rule_id in screened and r.result is not Outcome.PASS]
    if failed:
        raise InvalidInputError(
            "a cap-proof.v3 can only prove that no committed name is listed: "
            + "; ".join(f"{r.rule_id}: {r.message}" for r in failed)
            + "; run `cap screen` for the rows, or build with --scheme v2 to publish the failing proof",
            code="v3_listed_name",
        )


def apply_zk(
    ir: PolicyIR,
    results: Sequence[RuleResult],
    suppliers: Sequence[Supplier],
    ubos: Sequence[Ubo],
    zk: ZkProving,
) -> tuple[ScreeningCommitments, list[RuleResult]]:
    """Prove the screening of the committed records and swap it into the screening rules' evidence.

    Returns the commitments the manifest signs and the results with v3 evidence. Raises InvalidInputError
    (``v3_listed_name``) when a screening rule failed, ZkToolError/VerificationError when proving fails.
    """
    screened = _screened_lists(ir, results)
    _refuse_listed(results, screened)
    circuit = zk.setup.compiled.circuit
    leaves = {"suppliers": prover.screened_leaves(suppliers, zk.salt_seed, zk.version)}
    if "ubos" in screened.values():
        leaves["ubos"] = ubo_leaves(ubos, zk.salt_seed, zk.version)
    risk = {
        "suppliers": risk_words(zk.high_risk, circuit),
        "ubos": risk_words((), circuit),
    }
    evidence: dict[str, ScreeningEvidence] = {
        which: prover.prove_all(zk.setup, zk.gaps, risk[which], rows, cache=zk.cache)
        for which, rows in leaves.items()
    }
    commitments = ScreeningCommitments(
        suppliers=prover.commit(leaves["suppliers"], circuit),
        ubos=prover.commit(leaves["ubos"], circuit) if "ubos" in leaves else None,
    )
    swapped = [
        r.model_copy(update={"evidence": _v3_evidence(r, evidence[screened[r.rule_id]])})
        if r.rule_id in screened
        else r
        for r in results
    ]
    return commitments, swapped


def _v3_evidence(result: RuleResult, ev: ScreeningEvidence) -> dict[str, object]:
    kept: dict[str, object] = {
        k: result.evidence[k] for k in ("list_root", "key_version") if k in result.evidence
    }
    return {**kept, ZK_EVIDENCE: ev.model_dump(mode="json")}
