"""A stateful property test over the operations an operator combines on one data dir (issue 16).

Hypothesis drives keygen (each example starts from one), rotation phases and their rollbacks, revocation,
backups, restores (verify-only and real; old and new backups; refuse, merge or explicit rollback), lists
installs, proof builds and verification. After every step:

- the registry has lost no acknowledged entry (a real restore of backup B keeps exactly B's entries plus
  whatever was written after it), and no entry id is ever handed out twice;
- no revoked or retired key is active again unless the step was an explicit override
  (``rollback-decommission`` or a restore with ``--allow-key-rollback``);
- the in-process service verdict (what ``cap verify`` runs) equals a running API's on the latest proof,
  and the API's ``/readyz`` serves the data dir's generation and keyring version.

Every backup taken is verified (verify-only) when taken, on demand, and all again at the end, where one
``cap verify`` subprocess leg is compared with the API as well. ``CAP_STATEFUL_STEPS`` sets the step
count (``make test`` default below; ``make soak`` runs more).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from core import service
from core.anchors import trust_anchors
from core.backup import service as backups
from core.errors import ConflictError, NotFoundError, RotationError, VerificationError
from core.generation import generation_number
from core.keys import KeyStatus
from core.modes import CheckStatus, EnforcementMode
from core.policy_store import PolicyStore
from core.proof import proof_file_bytes
from core.registry import Registry
from core.rotation import RotationPhase, RotationRequest, current_phase
from core.settings import Settings
from tests.live import dev_token, free_port, prepare_data_dir, run_cap, serving, uvicorn_command
from tests.world import World

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ops_state_machine")]

STEPS = int(os.environ.get("CAP_STATEFUL_STEPS", "200"))
STEPS_PER_EXAMPLE = 25
DEAD = (KeyStatus.RETIRED, KeyStatus.REVOKED)
LIVE_STATUSES = (KeyStatus.ACTIVE, KeyStatus.PENDING)
KEEP = {"dev-issuer"}  # the API's token issuer survives between examples


@dataclass(frozen=True)
class Taken:
    backup_id: str
    keyring_version: int
    entries: frozenset[str]


class _Live:
    """One API process for the whole run, on one data dir path that each example empties."""

    def __init__(self, root: Path) -> None:
        self.env = {
            **os.environ,
            "CAP_ENV": "dev",
            "CAP_DATA_DIR": str(root / "var"),
            "CAP_BUILD_DIR": str(root / "build"),
            "NO_COLOR": "1",
        }
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.settings = Settings.from_env(self.env)
        self.root = root
        self.url = ""
        self.token = ""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    state = _Live(tmp_path_factory.mktemp("ops"))
    prepare_data_dir(state.env)
    state.token = dev_token(state.env, ["verify:run"])
    port = free_port()
    with serving(uvicorn_command(port), state.env, port) as url:
        state.url = url
        yield state


def _now() -> datetime:
    return datetime.now(UTC)


def _reset(settings_: Settings) -> None:
    root = settings_.data_dir
    for entry in root.iterdir():
        if entry.name not in KEEP:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    service.keygen(settings_, now=_now())
    Registry(settings_.layout.registry_db).close()
    PolicyStore(settings_.layout.policy_db).close()


RAN: Counter[str] = Counter()


class OpsMachine(RuleBasedStateMachine):
    live: _Live

    def __init__(self) -> None:
        super().__init__()
        self.s = self.live.settings
        _reset(self.s)
        self.backups: list[Taken] = []
        self.entries: set[str] = set()  # acknowledged entries the registry must hold
        self.issued: set[str] = set()  # every id ever handed out in this data dir
        self.dead = self._dead_now()
        self.proof: bytes | None = None
        self.served_generation = -1

    # --- helpers ------------------------------------------------------------------------------------

    def _keyring(self):
        return service.load_local_keyring(self.s)

    def _dead_now(self) -> set[str]:
        return {e.kid for e in self._keyring().keys if e.status in DEAD}

    def _registry_ids(self) -> set[str]:
        with Registry(self.s.layout.registry_db) as registry:
            return {e.id for e in registry.entries()}

    def _verify_only(self, taken: Taken) -> None:
        receipt = backups.restore_now(self.s, taken.backup_id, now=_now(), verify_only=True)
        assert [s.status for s in receipt.steps][-2:] == ["skipped", "skipped"]

    # --- rules --------------------------------------------------------------------------------------

    @rule(phase=st.integers(0, 3), rollback=st.booleans())
    def rotate(self, phase: int, rollback: bool) -> None:
        RAN["rotate"] += 1
        self._rotate(phase, rollback)

    def _rotate(self, phase: int, rollback: bool) -> None:
        before = self._keyring()
        request = RotationRequest(
            phase=RotationPhase(phase), rollback=rollback, force=True, duration=timedelta(hours=1)
        )
        try:
            service.rotate_signing_key(self.s, request, _now(), confirm=lambda plan: True)
        except (RotationError, ConflictError, NotFoundError):
            assert self._keyring() == before, "a refused rotation step changed the keyring"
            return
        if rollback and phase == 3:  # rollback-decommission: the operator reactivates the old key
            self.dead = self._dead_now()
        self.dead |= self._dead_now()

    @rule()
    def advance(self) -> None:
        """The next phase of the rotation in progress (or phase 0 of a new one): reaches every phase often."""
        RAN["advance"] += 1
        phase = (int(current_phase(self._keyring())) + 1) % 4
        self._rotate(phase, False)

    @rule(pick=st.integers(0, 7))
    def revoke(self, pick: int) -> None:
        RAN["revoke"] += 1
        keys = sorted(e.kid for e in self._keyring().keys)
        kid = keys[pick % len(keys)]
        try:
            service.revoke_signing_key(self.s, kid, _now(), reason="property test")
        except (ConflictError, RotationError):
            return
        self.dead.add(kid)

    @rule()
    def backup(self) -> None:
        RAN["backup"] += 1
        made = backups.backup_now(self.s, now=_now())
        taken = Taken(made.manifest.backup_id, self._keyring().version, frozenset(self.entries))
        self.backups.append(taken)
        self._verify_only(taken)

    @precondition(lambda self: self.backups)
    @rule(pick=st.integers(0, 99))
    def restore_verify_only(self, pick: int) -> None:
        RAN["restore_verify_only"] += 1
        self._verify_only(self.backups[pick % len(self.backups)])

    @precondition(lambda self: self.backups)
    @rule(pick=st.integers(0, 99), choice=st.sampled_from(["none", "merge", "rollback"]))
    def restore(self, pick: int, choice: str) -> None:
        RAN["restore"] += 1
        taken = self.backups[pick % len(self.backups)]
        before = self._keyring()
        older = taken.keyring_version < before.version
        try:
            backups.restore_now(
                self.s,
                taken.backup_id,
                now=_now(),
                keyring_merge=choice == "merge",
                allow_key_rollback=choice == "rollback",
            )
        except VerificationError as exc:
            assert exc.code == "keyring_rollback" and older and choice == "none", exc.diagnostics()
            assert self._keyring() == before and self._registry_ids() >= self.entries
            return
        assert not (older and choice == "none"), "an older keyring was restored without a decision"
        self.entries = set(taken.entries)
        if choice == "merge" and older:
            assert self._keyring() == before, "merge must keep the live keyring"
        if choice == "rollback":
            self.dead = self._dead_now()  # the explicit override
        self.dead |= self._dead_now()

    @rule()
    def install_lists(self) -> None:
        RAN["install_lists"] += 1
        lists = self.s.layout.lists_dir
        lists.mkdir(exist_ok=True)
        shutil.copy(Path("examples/high_risk.csv"), lists / "high_risk.csv")
        fresh = World(lists_built_at=_now()).lists_file  # the lists the proofs are screened against
        assert fresh is not None
        service.install_lists(self.s, fresh, _now(), actor="test")

    @rule()
    def prove(self) -> None:
        RAN["prove"] += 1
        now = _now()
        signer = service.default_signer(self.s)
        built = World(signer=signer, lists_built_at=now).build()
        entry = service.register_proof(self.s, built.proof, built.verdict, signer, now)
        assert entry.id not in self.issued, f"entry id {entry.id} handed out twice"
        self.issued.add(entry.id)
        self.entries.add(entry.id)
        self.proof = proof_file_bytes(built.proof)

    # --- invariants ---------------------------------------------------------------------------------

    @invariant()
    def registry_lost_nothing(self) -> None:
        missing = self.entries - self._registry_ids()
        assert not missing, f"registry lost {sorted(missing)}"

    @invariant()
    def no_key_comes_back(self) -> None:
        keyring = self._keyring()
        back = [k for k in self.dead if (e := keyring.entry(k)) is not None and e.status in LIVE_STATUSES]
        assert not back, f"retired/revoked keys active again without an override: {back}"

    @invariant()
    def api_agrees_with_cli(self) -> None:
        generation = generation_number(self.s.data_dir)
        if generation != self.served_generation:  # /readyz after every change of generation
            ready = httpx.get(f"{self.live.url}/readyz", timeout=30).json()
            failed = [c for c in ready["checks"] if c["status"] != "ok"]
            assert not failed and ready["generation"] == generation, (failed, ready["generation"], generation)
            version = next(c for c in ready["checks"] if c["name"] == "keyring")["message"]
            assert version.startswith(f"v{self._keyring().version},"), ready
            self.served_generation = generation
        if self.proof is None:
            return
        cli = service.verify_file(
            self.s,
            self.proof,
            source="proof",
            mode=EnforcementMode.STRICT,
            now=_now(),
            trust=trust_anchors(self.s),
        )
        assert self._api_verdict() == cli.result.value.upper()

    def _api_verdict(self) -> str:
        headers = {"Authorization": f"Bearer {self.live.token}"}
        body = {"proof": json.loads(self.proof or b"{}")}
        response = httpx.post(f"{self.live.url}/verify", json=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        return str(response.json()["result"])

    def teardown(self) -> None:
        for taken in self.backups:
            self._verify_only(taken)
        if self.proof is not None:
            path = self.live.root / "proof.json"
            path.write_bytes(self.proof)
            done = run_cap("verify", "--proof", str(path), "--json", env=self.live.env)
            assert done.returncode in (0, 1, 3, 4), done.stderr  # a verdict (3: FAIL), never bad input/crash
            assert str(json.loads(done.stdout)["result"]).upper() == self._api_verdict()


def test_operations_hold_together(live):
    OpsMachine.live = live
    machine = settings(
        max_examples=max(1, STEPS // STEPS_PER_EXAMPLE),
        stateful_step_count=STEPS_PER_EXAMPLE,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        # `make test` replays one fixed sequence (a random one once left a rule unrun in 200 steps and
        # failed the run); `make soak` (CAP_STATEFUL_STEPS set) explores new ones each time
        derandomize="CAP_STATEFUL_STEPS" not in os.environ,
    )(OpsMachine)
    RAN.clear()
    machine.TestCase().runTest()
    rules = {
        "rotate",
        "advance",
        "revoke",
        "backup",
        "restore_verify_only",
        "restore",
        "install_lists",
        "prove",
    }
    assert set(RAN) == rules, f"rules never run: {rules - set(RAN)} (ran {dict(RAN)})"


def test_the_verdicts_compared_can_differ(live):
    """The invariant is not vacuous: the same proof is OK/WARN while its key is live and FAIL once revoked."""
    s = live.settings
    _reset(s)
    first = service.load_local_keyring(s).default_signing_kid
    service.rotate_signing_key(s, RotationRequest(phase=RotationPhase(0), force=True), _now())
    service.rotate_signing_key(s, RotationRequest(phase=RotationPhase(1), force=True), _now())
    service.rotate_signing_key(
        s, RotationRequest(phase=RotationPhase(2), force=True), _now(), confirm=lambda p: True
    )
    world = World(signer=service.KeyStore(s.layout).signer(first), lists_built_at=_now())
    assert world.lists_file is not None
    service.install_lists(s, world.lists_file, _now(), actor="test")
    proof = proof_file_bytes(world.build().proof)
    trust = trust_anchors(s)
    strict = EnforcementMode.STRICT
    before = service.verify_file(s, proof, source="proof", mode=strict, now=_now(), trust=trust).result
    service.revoke_signing_key(s, first, _now(), reason="compromised")
    after = service.verify_file(s, proof, source="proof", mode=strict, now=_now(), trust=trust).result
    assert before is not CheckStatus.FAIL and after is CheckStatus.FAIL
    machine = OpsMachine.__new__(OpsMachine)
    machine.live, machine.proof = live, proof
    assert machine._api_verdict() == "FAIL"
