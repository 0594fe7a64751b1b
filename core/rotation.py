"""The signing-key rotation state machine (SPEC §4, the seed's four phases), pure: no I/O, ``now`` passed in.

Owns: :class:`RotationPhase` and :class:`RotationAction`, the request a caller makes
(:class:`RotationRequest`), the resolution of the key pair a rotation is about (from the keyring's history),
the legal transitions (:func:`advance`, raising :class:`RotationError` on an illegal step), the compensating
:func:`revert`, revocation (:func:`revoke`), the keyring diff shown by dry runs, the Helm ``verifier.signing``
values block and the "fresh signature by the expected signer verifies" probe. Writing files, generating keys
and counting registry entries are the service layer's job (``core/service.py``).

Phase states of a pair (old, new), derived from the keyring alone:

=============  ==========================================================================
PREPARE        new listed ``pending``; old is the default; ``single-key``
DUAL_ACCEPT    both ``active``; ``dual-accept``; old is the default
SIGN_SWITCH    both ``active``; ``dual-accept``; new is the default
DECOMMISSION   old ``retired`` (or ``revoked``); new is the default; ``single-key``
=============  ==========================================================================

Every change raises ``version`` by one and appends a :class:`HistoryEvent` whose ``kid`` is the new key and
whose ``detail`` starts ``old=<kid> new=<kid>`` (that is how later phases find the pair). Re-running a phase
whose state is already reached returns the keyring unchanged (same version).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import Enum, IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.errors import InvalidInputError, RotationError
from core.keyring import HistoryEvent, Keyring, KeyringEntry, KeyringMode, key_acceptance
from core.keys import KeyStatus, Kid, format_timestamp, parse_timestamp
from core.modes import CheckStatus, EnforcementMode
from core.signing import Signer, verify_signature

DEFAULT_DUAL_ACCEPT = timedelta(hours=168)
MAX_DURATION = timedelta(days=3650)  # longer windows are typos, and timedelta overflows not far beyond
DEFAULT_CENSUS_WINDOW = timedelta(hours=24)
DEFAULT_KEY_MOUNT = "/keys"
PROBE_DOMAIN = b"cap-rotation-probe.v1\n"
_PAIR = re.compile(r"^old=([0-9a-f]{32}) new=([0-9a-f]{32})")
_DURATION = re.compile(r"([0-9]+)([smhd])")
# The accepted texts as a JSON-schema pattern (for the API): unit parts, at least one of them non-zero.
DURATION_PATTERN = r"^\s*([0-9]+[smhdSMHD])*0*[1-9][0-9]*[smhdSMHD]([0-9]+[smhdSMHD])*\s*$"
_KID = re.compile(r"[0-9a-f]{32}")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class RotationPhase(IntEnum):
    PREPARE = 0
    DUAL_ACCEPT = 1
    SIGN_SWITCH = 2
    DECOMMISSION = 3


class RotationAction(str, Enum):  # noqa: UP042 - str mix-in on purpose (JSON, history)
    PREPARE = "prepare"
    DUAL_ACCEPT = "dual-accept"
    SIGN_SWITCH = "sign-switch"
    DECOMMISSION = "decommission"
    ROLLBACK_SIGN_SWITCH = "rollback-sign-switch"
    ROLLBACK_DECOMMISSION = "rollback-decommission"
    REVERT = "revert"
    REVOKE = "revoke"


# action -> (state it starts from, state it produces); None = the new key is not in the keyring yet
_TRANSITIONS: dict[RotationAction, tuple[RotationPhase | None, RotationPhase]] = {
    RotationAction.PREPARE: (None, RotationPhase.PREPARE),
    RotationAction.DUAL_ACCEPT: (RotationPhase.PREPARE, RotationPhase.DUAL_ACCEPT),
    RotationAction.SIGN_SWITCH: (RotationPhase.DUAL_ACCEPT, RotationPhase.SIGN_SWITCH),
    RotationAction.DECOMMISSION: (RotationPhase.SIGN_SWITCH, RotationPhase.DECOMMISSION),
    RotationAction.ROLLBACK_SIGN_SWITCH: (RotationPhase.SIGN_SWITCH, RotationPhase.DUAL_ACCEPT),
    RotationAction.ROLLBACK_DECOMMISSION: (RotationPhase.DECOMMISSION, RotationPhase.SIGN_SWITCH),
}
_FORWARD = {
    RotationPhase.PREPARE: RotationAction.PREPARE,
    RotationPhase.DUAL_ACCEPT: RotationAction.DUAL_ACCEPT,
    RotationPhase.SIGN_SWITCH: RotationAction.SIGN_SWITCH,
    RotationPhase.DECOMMISSION: RotationAction.DECOMMISSION,
}
_ROLLBACK = {
    RotationPhase.SIGN_SWITCH: RotationAction.ROLLBACK_SIGN_SWITCH,
    RotationPhase.DECOMMISSION: RotationAction.ROLLBACK_DECOMMISSION,
}
APPROVAL_PHASES = frozenset({RotationPhase.SIGN_SWITCH, RotationPhase.DECOMMISSION})


def parse_duration(text: str, *, field: str = "duration") -> timedelta:
    """``168h``, ``7d``, ``1h30m``, ``90s`` → timedelta (> 0). Raises :class:`InvalidInputError`."""
    cleaned = text.strip().lower() if isinstance(text, str) else ""
    parts = _DURATION.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise InvalidInputError(
            f"not a duration: {str(text)[:40]!r}", field=field, expected="e.g. 168h, 7d, 30m"
        )
    if any(len(n) > 9 for n, _ in parts):  # int() of thousands of digits is itself an error
        total = MAX_DURATION * 2
    else:
        try:
            total = sum((timedelta(**{_UNITS[u]: int(n)}) for n, u in parts), timedelta())
        except OverflowError:
            total = MAX_DURATION * 2
    if total <= timedelta():
        raise InvalidInputError("duration must be positive", field=field, found=text)
    if total > MAX_DURATION:
        raise InvalidInputError(
            f"duration is longer than {MAX_DURATION.days} days", field=field, found=str(text)[:40]
        )
    return total


class RotationRequest(BaseModel):
    """What an operator asks for: one phase (or its rollback) of the rotation old → new."""

    model_config = ConfigDict(frozen=True)

    phase: RotationPhase
    rollback: bool = False
    old_kid: Kid | None = None
    new_kid: Kid | None = None
    duration: timedelta = DEFAULT_DUAL_ACCEPT
    census_window: timedelta = DEFAULT_CENSUS_WINDOW
    force: bool = False
    actor: str = Field("cap", min_length=1)

    @property
    def action(self) -> RotationAction:
        """The transition asked for. Raises :class:`RotationError` for a rollback of phase 0 or 1."""
        if not self.rollback:
            return _FORWARD[self.phase]
        if self.phase not in _ROLLBACK:
            raise RotationError(
                "only phases 2 and 3 can be rolled back",
                code="rollback_unsupported",
                field="phase",
                found=int(self.phase),
                expected="2 or 3",
            )
        return _ROLLBACK[self.phase]

    @property
    def needs_approval(self) -> bool:
        """Phases 2 and 3 (and their rollbacks) wait for a person unless forced."""
        return self.phase in APPROVAL_PHASES and not self.force


def make_request(
    phase: int,
    *,
    rollback: bool = False,
    old_kid: str | None = None,
    new_kid: str | None = None,
    duration: str = "168h",
    census_window: str = "24h",
    force: bool = False,
    actor: str = "cap",
) -> RotationRequest:
    """A request from plain CLI/flow options. Raises :class:`InvalidInputError` naming the bad option."""
    if phase not in tuple(RotationPhase):
        raise InvalidInputError("phase must be 0, 1, 2 or 3", field="phase", found=phase)
    for name, kid in (("old_kid", old_kid), ("new_kid", new_kid)):
        if kid is not None and not _KID.fullmatch(kid):
            raise InvalidInputError("not a key id", field=name, found=kid[:40], expected="32 lowercase hex")
    return RotationRequest(
        phase=RotationPhase(phase),
        rollback=rollback,
        old_kid=old_kid,
        new_kid=new_kid,
        duration=parse_duration(duration),
        census_window=parse_duration(census_window, field="census_window"),
        force=force,
        actor=actor or "cap",
    )


class RotationPair(BaseModel):
    """The keys one rotation is about; ``new_kid`` is None before phase 0 generated the new key."""

    model_config = ConfigDict(frozen=True)

    old_kid: Kid
    new_kid: Kid | None = None


class RotationStep(BaseModel):
    """Everything :func:`advance` needs for one transition; ``census`` = recent entries by the old key."""

    model_config = ConfigDict(frozen=True)

    action: RotationAction
    old_kid: Kid
    new_kid: Kid
    actor: str = Field(min_length=1)
    duration: timedelta = DEFAULT_DUAL_ACCEPT
    force: bool = False
    census: int = Field(0, ge=0)
    new_entry: KeyringEntry | None = None


# --- where a rotation stands --------------------------------------------------------------------------


def _fail(message: str, code: str, **details: Any) -> RotationError:
    return RotationError(message, code=code, **details)


def phase_of(keyring: Keyring, old_kid: str, new_kid: str) -> RotationPhase | None:
    """The phase state the keyring is in for (old, new); None if ``new_kid`` is not listed.

    Raises :class:`RotationError` ``rotation_key_unknown`` or ``rotation_state_unknown``.
    """
    old, new = keyring.entry(old_kid), keyring.entry(new_kid)
    if old is None:
        raise _fail(f"old key {old_kid} is not in the keyring", "rotation_key_unknown", field="old_kid")
    if new is None:
        return None
    dual = keyring.mode is KeyringMode.DUAL_ACCEPT
    default = keyring.default_signing_kid
    both_active = old.status is KeyStatus.ACTIVE and new.status is KeyStatus.ACTIVE
    if new.status is KeyStatus.PENDING and default == old_kid and not dual:
        return RotationPhase.PREPARE
    if both_active and dual and default in (old_kid, new_kid):
        return RotationPhase.DUAL_ACCEPT if default == old_kid else RotationPhase.SIGN_SWITCH
    gone = old.status in (KeyStatus.RETIRED, KeyStatus.REVOKED)
    if gone and new.status is KeyStatus.ACTIVE and default == new_kid and not dual:
        return RotationPhase.DECOMMISSION
    raise _fail(
        f"keyring v{keyring.version} fits no rotation phase for {old_kid} -> {new_kid}",
        "rotation_state_unknown",
        found=f"old {old.status.value}, new {new.status.value}, mode {keyring.mode.value}",
    )


def rotation_pair(keyring: Keyring) -> RotationPair | None:
    """The pair named by the latest rotation event, unless its new key was removed or revoked since."""
    for event in reversed(keyring.history):
        match = _PAIR.match(event.detail or "")
        if match is None:
            continue
        old, new = match.groups()
        new_entry = keyring.entry(new)
        if keyring.entry(old) is None or new_entry is None or new_entry.status is KeyStatus.REVOKED:
            return None
        return RotationPair(old_kid=old, new_kid=new)
    return None


def _in_progress(keyring: Keyring) -> RotationPair | None:
    pair = rotation_pair(keyring)
    if pair is None or pair.new_kid is None:
        return None
    return None if phase_of(keyring, pair.old_kid, pair.new_kid) is RotationPhase.DECOMMISSION else pair


def resolve(keyring: Keyring, request: RotationRequest) -> RotationPair:
    """The pair ``request`` is about. Raises :class:`RotationError` when it conflicts with the keyring."""
    current = _in_progress(keyring)
    if request.action is RotationAction.PREPARE:
        if current is None:
            old = request.old_kid or keyring.default_signing_kid
            return _checked(RotationPair(old_kid=old, new_kid=request.new_kid), request)
        if request.new_kid not in (None, current.new_kid):
            raise _fail(
                f"rotation {current.old_kid} -> {current.new_kid} is in progress; finish or roll it back",
                "rotation_in_progress",
                field="new_kid",
                found=request.new_kid,
            )
        return _checked(current, request)
    pair = rotation_pair(keyring)
    if pair is None:
        raise _fail("no rotation to continue: start with phase 0", "rotation_not_prepared", field="phase")
    return _checked(pair, request)


def _checked(pair: RotationPair, request: RotationRequest) -> RotationPair:
    for name, given in (("old_kid", request.old_kid), ("new_kid", request.new_kid)):
        if given is not None and given != getattr(pair, name):
            raise _fail(
                f"{name} {given} is not the key of the rotation in the keyring",
                "rotation_pair_mismatch",
                field=name,
                found=given,
                expected=getattr(pair, name),
            )
    if pair.old_kid == pair.new_kid:
        raise _fail("old and new key must differ", "rotation_same_key", field="new_kid", found=pair.new_kid)
    return pair


def current_phase(keyring: Keyring) -> RotationPhase:
    """Phase of the latest rotation; DECOMMISSION (rotation complete) when single-key with none running."""
    pair = rotation_pair(keyring)
    if pair is None or pair.new_kid is None:
        return RotationPhase.DECOMMISSION
    return phase_of(keyring, pair.old_kid, pair.new_kid) or RotationPhase.DECOMMISSION


def dual_accept_remaining(keyring: Keyring, now: datetime) -> float:
    """Seconds left in the dual-accept window (0 outside dual-accept or once it ended)."""
    if keyring.mode is not KeyringMode.DUAL_ACCEPT or keyring.dual_accept_until is None:
        return 0.0
    until = parse_timestamp(keyring.dual_accept_until, field="dual_accept_until")
    return max(0.0, (until - now).total_seconds())


def make_step(
    request: RotationRequest, pair: RotationPair, census: int = 0, new_entry: KeyringEntry | None = None
) -> RotationStep:
    """The step for ``request`` on ``pair``; phase 0 takes the new key from ``new_entry``."""
    new_kid = new_entry.kid if new_entry is not None else pair.new_kid
    if new_kid is None:
        raise _fail("phase 0 needs the new key", "rotation_new_key_missing", field="new_kid")
    return RotationStep(
        action=request.action,
        old_kid=pair.old_kid,
        new_kid=new_kid,
        actor=request.actor,
        duration=request.duration,
        force=request.force,
        census=census,
        new_entry=new_entry,
    )


class RotationPlan(BaseModel):
    """One step worked out: the keyring before and after, and whether anything changes."""

    model_config = ConfigDict(frozen=True)

    request: RotationRequest
    pair: RotationPair
    step: RotationStep
    before: Keyring
    after: Keyring

    @property
    def noop(self) -> bool:
        return self.after is self.before or self.after == self.before

    @property
    def diff(self) -> tuple[str, ...]:
        return keyring_diff(self.before, self.after)


def plan(
    keyring: Keyring,
    request: RotationRequest,
    now: datetime,
    *,
    census: int = 0,
    new_entry: KeyringEntry | None = None,
) -> RotationPlan:
    """Resolve the pair, build the step and :func:`advance`. Raises :class:`RotationError` as those do."""
    pair = resolve(keyring, request)
    step = make_step(request, pair, census, new_entry)
    after = advance(keyring, step, now)
    return RotationPlan(request=request, pair=pair, step=step, before=keyring, after=after)


# --- transitions -----------------------------------------------------------------------------------------


def advance(keyring: Keyring, step: RotationStep, now: datetime) -> Keyring:
    """Apply ``step``; the same keyring if its target state is already reached (a no-op re-run).

    Raises :class:`RotationError`: ``phase_passed``, ``phase_skipped``, ``rotation_not_prepared``,
    ``rotation_state_unknown``, ``dual_accept_active``, ``census_not_empty``, ``dual_accept_expired``,
    ``key_revoked``, ``rotation_in_progress``.
    """
    if step.action not in _TRANSITIONS:
        raise _fail(f"{step.action.value} is not a rotation phase", "rotation_action_invalid")
    start, target = _TRANSITIONS[step.action]
    state = phase_of(keyring, step.old_kid, step.new_kid)
    if state is target:
        return keyring
    if state is not start:
        raise _order_error(step.action, state, start, target)
    _check_gates(keyring, step, now)
    return _bump(keyring, _APPLY[step.action](keyring, step, now), step, now)


def _order_error(
    action: RotationAction, state: RotationPhase | None, start: RotationPhase | None, target: RotationPhase
) -> RotationError:
    found = "not prepared" if state is None else f"phase {int(state)} ({state.name.lower()})"
    need = "not prepared" if start is None else f"phase {int(start)}"
    text = f"cannot {action.value}: the keyring is at {found}, this step needs {need}"
    if action in _ROLLBACK.values():
        return _fail(text, "rollback_not_applicable", found=found, expected=need)
    if state is None:
        return _fail(text, "rotation_not_prepared", found=found, expected=need)
    code = "phase_passed" if int(state) > int(target) else "phase_skipped"
    return _fail(text, code, found=found, expected=need)


def _check_gates(keyring: Keyring, step: RotationStep, now: datetime) -> None:
    if step.action is RotationAction.PREPARE:
        _check_can_prepare(keyring, step)
    elif step.action is RotationAction.SIGN_SWITCH and not step.force:
        if dual_accept_remaining(keyring, now) <= 0:
            raise _fail(
                f"dual-accept ended at {keyring.dual_accept_until}: old-key proofs would stop "
                "verifying; roll back or force",
                "dual_accept_expired",
            )
    elif step.action is RotationAction.DECOMMISSION and not step.force:
        if dual_accept_remaining(keyring, now) > 0:
            raise _fail(
                f"dual-accept runs until {keyring.dual_accept_until}",
                "dual_accept_active",
                expected=f"now after {keyring.dual_accept_until} (or force)",
            )
        if step.census > 0:
            raise _fail(
                f"census: {step.census} recent registry entries are signed by {step.old_kid}",
                "census_not_empty",
                found=step.census,
                expected="0 (or force)",
            )
    elif step.action is RotationAction.ROLLBACK_DECOMMISSION:
        old = keyring.entry(step.old_kid)
        if old is not None and old.status is KeyStatus.REVOKED:
            raise _fail(f"key {step.old_kid} is revoked and cannot come back", "key_revoked")


def _check_can_prepare(keyring: Keyring, step: RotationStep) -> None:
    if step.new_entry is None or step.new_entry.kid != step.new_kid:
        raise _fail("phase 0 needs the new key's public entry", "rotation_new_key_missing", field="new_kid")
    if keyring.default_signing_kid != step.old_kid:
        raise _fail(
            f"old key {step.old_kid} is not the default signer",
            "rotation_pair_mismatch",
            field="old_kid",
            expected=keyring.default_signing_kid,
        )
    busy = [e.kid for e in keyring.keys if e.status is KeyStatus.PENDING]
    if keyring.mode is KeyringMode.DUAL_ACCEPT or busy:
        raise _fail(
            "another rotation is in progress", "rotation_in_progress", found=busy or keyring.mode.value
        )


def _with_status(
    keyring: Keyring, kid: str, status: KeyStatus, retired_at: str | None
) -> tuple[KeyringEntry, ...]:
    return tuple(
        e.model_copy(update={"status": status, "retired_at": retired_at}) if e.kid == kid else e
        for e in keyring.keys
    )


def _until(step: RotationStep, now: datetime) -> str:
    return format_timestamp(now + step.duration)


def _prepare(keyring: Keyring, step: RotationStep, now: datetime) -> dict[str, object]:
    if step.new_entry is None:
        raise _fail("phase 0 needs the new key's public entry", "rotation_new_key_missing", field="new_kid")
    pending = step.new_entry.model_copy(update={"status": KeyStatus.PENDING, "retired_at": None})
    return {"keys": (*keyring.keys, pending)}


def _dual_accept(keyring: Keyring, step: RotationStep, now: datetime) -> dict[str, object]:
    return {
        "keys": _with_status(keyring, step.new_kid, KeyStatus.ACTIVE, None),
        "mode": KeyringMode.DUAL_ACCEPT,
        "dual_accept_until": _until(step, now),
    }


def _sign_switch(keyring: Keyring, step: RotationStep, now: datetime) -> dict[str, object]:
    return {"default_signing_kid": step.new_kid}


def _decommission(keyring: Keyring, step: RotationStep, now: datetime) -> dict[str, object]:
    return {
        "keys": _with_status(keyring, step.old_kid, KeyStatus.RETIRED, format_timestamp(now)),
        "mode": KeyringMode.SINGLE_KEY,
        "dual_accept_until": None,
    }


def _rollback_sign_switch(keyring: Keyring, step: RotationStep, now: datetime) -> dict[str, object]:
    return {"default_signing_kid": step.old_kid, "dual_accept_until": _until(step, now)}


def _rollback_decommission(keyring: Keyring, step: RotationStep, now: datetime) -> dict[str, object]:
    return {
        "keys": _with_status(keyring, step.old_kid, KeyStatus.ACTIVE, None),
        "mode": KeyringMode.DUAL_ACCEPT,
        "dual_accept_until": _until(step, now),
    }


_APPLY = {
    RotationAction.PREPARE: _prepare,
    RotationAction.DUAL_ACCEPT: _dual_accept,
    RotationAction.SIGN_SWITCH: _sign_switch,
    RotationAction.DECOMMISSION: _decommission,
    RotationAction.ROLLBACK_SIGN_SWITCH: _rollback_sign_switch,
    RotationAction.ROLLBACK_DECOMMISSION: _rollback_decommission,
}


def _next(
    base: Keyring,
    history_of: Keyring,
    changes: dict[str, object],
    action: RotationAction,
    actor: str,
    now: datetime,
    kid: str | None,
    detail: str,
) -> Keyring:
    """``base`` with ``changes``, version ``history_of.version`` + 1, one event added to its history."""
    version = history_of.version + 1
    event = HistoryEvent(
        version=version,
        action=action.value,
        actor=actor,
        at=format_timestamp(now),
        kid=kid,
        detail=detail[:500],
    )
    return base.model_copy(update={**changes, "version": version, "history": (*history_of.history, event)})


def _bump(keyring: Keyring, changes: dict[str, object], step: RotationStep, now: datetime) -> Keyring:
    detail = f"old={step.old_kid} new={step.new_kid}" + (" forced" if step.force else "")
    return _next(keyring, keyring, changes, step.action, step.actor, now, step.new_kid, detail)


def revert(current: Keyring, previous: Keyring, now: datetime, actor: str, reason: str) -> Keyring:
    """Compensation: ``previous``'s content under a new version (current + 1), the full history kept."""
    detail = f"back to the content of v{previous.version}: {reason}"
    return _next(previous, current, {}, RotationAction.REVERT, actor, now, None, detail)


def revoke(keyring: Keyring, kid: str, now: datetime, actor: str, reason: str | None = None) -> Keyring:
    """Mark ``kid`` revoked (terminal). Leaves dual-accept when no second active key remains.

    Idempotent. Raises :class:`RotationError` ``rotation_key_unknown`` or ``revoke_default_key`` (rotate
    first: phases 0-2 with force, then revoke the old key).
    """
    entry = keyring.entry(kid)
    if entry is None:
        raise _fail(f"key {kid} is not in the keyring", "rotation_key_unknown", field="kid", found=kid)
    if entry.status is KeyStatus.REVOKED:
        return keyring
    if kid == keyring.default_signing_kid:
        raise _fail(
            "the default signing key cannot be revoked: rotate to a new key first (phases 0-2 with "
            "--force), then revoke it",
            "revoke_default_key",
            field="kid",
            found=kid,
        )
    keys = _with_status(keyring, kid, KeyStatus.REVOKED, entry.retired_at)
    others = [e for e in keys if e.status is KeyStatus.ACTIVE and e.kid != keyring.default_signing_kid]
    changes: dict[str, object] = {"keys": keys}
    if not others:
        changes.update(mode=KeyringMode.SINGLE_KEY, dual_accept_until=None)
    return _next(keyring, keyring, changes, RotationAction.REVOKE, actor, now, kid, reason or "revoked")


# --- what operators see ---------------------------------------------------------------------------------


def _text(value: object) -> str:
    return str(value.value) if isinstance(value, Enum) else str(value)


def keyring_diff(before: Keyring, after: Keyring) -> tuple[str, ...]:
    """Human-readable changes from ``before`` to ``after`` (empty when equal)."""
    lines = [
        f"{name}: {_text(getattr(before, name))} -> {_text(getattr(after, name))}"
        for name in ("version", "mode", "default_signing_kid", "dual_accept_until")
        if getattr(before, name) != getattr(after, name)
    ]
    for entry in after.keys:
        old = before.entry(entry.kid)
        if old is None:
            lines.append(f"+ key {entry.kid} ({entry.status.value})")
        elif old != entry:
            lines.append(
                f"key {entry.kid}: {old.status.value} -> {entry.status.value}"
                + (f", retired_at {entry.retired_at}" if entry.retired_at != old.retired_at else "")
            )
    lines += [f"- key {e.kid} ({e.status.value})" for e in before.keys if after.entry(e.kid) is None]
    lines += [f"+ history v{e.version} {e.action} by {e.actor}" for e in after.history[len(before.history) :]]
    return tuple(lines)


class SigningKeyValue(BaseModel):
    model_config = ConfigDict(frozen=True)
    kid: str
    path: str
    status: KeyStatus


class SigningValues(BaseModel):
    """The seed's Helm ``verifier.signing`` block."""

    model_config = ConfigDict(frozen=True)
    mode: KeyringMode
    keys: tuple[SigningKeyValue, ...]
    default_key: str
    dual_accept_until: str | None = None


def signing_values(keyring: Keyring, mount: str = DEFAULT_KEY_MOUNT) -> SigningValues:
    """Helm values for ``keyring``: each key's file under ``mount`` and the default signer's path."""

    def path(kid: str) -> str:
        return f"{mount.rstrip('/')}/{kid}.pem"

    return SigningValues(
        mode=keyring.mode,
        keys=tuple(SigningKeyValue(kid=e.kid, path=path(e.kid), status=e.status) for e in keyring.keys),
        default_key=path(keyring.default_signing_kid),
        dual_accept_until=keyring.dual_accept_until,
    )


def probe_signer(keyring: Keyring, signer: Signer, now: datetime) -> str:
    """Sign a fresh probe with ``signer`` and check it verifies as the keyring's default (strict mode).

    Returns the kid. Raises :class:`RotationError` ``rotation_probe_failed``.
    """
    if signer.kid != keyring.default_signing_kid:
        raise _fail(
            f"signer {signer.kid} is not the default {keyring.default_signing_kid}", "rotation_probe_failed"
        )
    data = PROBE_DOMAIN + f"v{keyring.version} {format_timestamp(now)}".encode("ascii")
    entry = keyring.default_entry
    if not verify_signature(entry.public_key, signer.sign(data), data):
        raise _fail(f"a fresh signature by {signer.kid} does not verify", "rotation_probe_failed")
    accepted = key_acceptance(keyring, signer.kid, EnforcementMode.STRICT, now)
    if accepted.status is not CheckStatus.OK:
        raise _fail(f"signer {signer.kid} is not acceptable: {accepted.reason}", "rotation_probe_failed")
    return signer.kid
