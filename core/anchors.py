"""Loading a verifier's trust anchors (the I/O side of :mod:`core.trust`).

Trusted lists are the lists installed in ``<data>/lists/lists.json`` (``cap lists build --install``,
``cap lists refresh``, the ``lists-refresh`` flow) plus any lists files the caller names; pinned
policies come from policy files (compiled to their hash) or hashes given as they are. A long-running
process holds an :class:`InstalledListsWatcher` that reloads the installed lists when they change (the
file's stamp, or the database's newest row: :mod:`core.store.lists`).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from core.documents import parse_json, validate_model
from core.errors import IntegrityError, InvalidInputError, NotFoundError
from core.fsio import atomic_write
from core.screening import load_lists
from core.settings import Settings
from core.store import lists_store
from core.store.lists import Stamp, load_installed
from core.trust import PinnedPolicy, PinnedVk, TrustAnchors, TrustedLists


def load_trusted(path: Path, origin: str) -> TrustedLists:
    """A lists file as a trust anchor. Raises (InvalidInput/Integrity/NotFound) naming the file."""
    return TrustedLists(origin=f"{origin} {path}", lists=load_lists(path))


def installed_lists(settings: Settings) -> tuple[TrustedLists, ...]:
    """The installed lists as a trust anchor (none if nothing is installed), from the data dir or the
    database (:func:`core.store.lists_store`)."""
    store = lists_store(settings)
    found = load_installed(store)
    return (TrustedLists(origin=f"installed {store.name}", lists=found),) if found is not None else ()


def _policy_hash(path: Path) -> str:
    # The compiler (and its YAML loader) only when a file is pinned: most `cap verify` runs pin none.
    from core.policy.compile import compile_policy
    from core.policy.lint import LintMode
    from core.policy.load import load_policy_file

    return compile_policy(load_policy_file(path), LintMode.RELAXED).policy_hash


def pinned_policies(policy_files: Sequence[Path], policy_hashes: Sequence[str]) -> tuple[PinnedPolicy, ...]:
    """Pins from policy files (compiled to their hash) and from hashes given as text."""
    pins = [PinnedPolicy(hash=_policy_hash(p), origin=f"--policy {p}") for p in policy_files]
    for h in policy_hashes:
        if not (h.startswith("0x") or h.startswith("sha3-256:")):
            raise InvalidInputError(
                "not a policy hash", field="expect_policy_hash", found=h, expected="0x… or sha3-256:…"
            )
        pins.append(PinnedPolicy(hash=h, origin="--expect-policy-hash"))
    return tuple(pins)


def read_pin(path: Path, origin: str = "installed") -> PinnedVk:
    """A ``cap-zk-pin.v1`` file. Raises InvalidInput/Integrity/NotFound naming the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise NotFoundError("pinned vk file not found", file=str(path)) from exc
    obj = parse_json(data, source=str(path), what="pinned vk", expected="cap-zk-pin.v1")
    pin = validate_model(PinnedVk, obj, source=str(path), what="pinned vk", expected="cap-zk-pin.v1")
    if pin.format != "cap-zk-pin.v1" or pin.vk.vk_hash != pin.vk_hash:
        raise IntegrityError("pinned vk does not hash to its vk_hash", file=str(path))
    return pin.model_copy(update={"origin": f"{origin} {path}"})


def installed_vks(settings: Settings) -> tuple[PinnedVk, ...]:
    """The pinned verifying keys of this data dir (``cap zk pin``)."""
    directory = settings.layout.zk_pins_dir
    return tuple(read_pin(p) for p in sorted(directory.glob("*.json"))) if directory.is_dir() else ()


def install_pin(settings: Settings, pin: PinnedVk) -> Path:
    """Pin ``pin`` in this data dir (one file per vk hash)."""
    name = pin.vk_hash.split(":")[-1][:32]
    body = pin.model_dump_json(exclude={"origin"}, indent=1).encode()
    return atomic_write(settings.layout.zk_pins_dir / f"{name}.json", body + b"\n")


def trust_anchors(
    settings: Settings,
    *,
    lists: Sequence[Path] = (),
    policies: Sequence[Path] = (),
    policy_hashes: Sequence[str] = (),
    installed: tuple[TrustedLists, ...] | None = None,
    vks: Sequence[PinnedVk] = (),
) -> TrustAnchors:
    """The verifier's anchors: installed lists (or ``installed`` when the caller holds them), the
    given lists files, pinned policies, the maximum list age from settings, and the pinned v3 vks (the
    data dir's and ``vks``; development vks only with ``settings.zk_allow_dev``)."""
    held = installed_lists(settings) if installed is None else installed
    given = tuple(load_trusted(p, "--lists") for p in lists)
    return TrustAnchors(
        lists=held + given,
        max_list_age=timedelta(days=settings.max_list_age_days),
        policies=pinned_policies(policies, policy_hashes),
        vks=installed_vks(settings) + tuple(vks),
        allow_dev_vk=settings.zk_allow_dev,
    )


class InstalledListsWatcher:
    """The installed lists of one data dir, reloaded when the file changes. Thread-safe.

    A replacement that fails to load is not trusted: the error propagates (``lists-refresh`` and
    ``cap lists build --install`` only install checked lists, so this means the file was tampered with).
    """

    def __init__(self, settings: Settings) -> None:
        self._store = lists_store(settings)
        self._lock = threading.Lock()
        self._stamp: Stamp | None = None
        self._held: tuple[TrustedLists, ...] = ()

    def current(self) -> tuple[TrustedLists, ...]:
        with self._lock:
            stamp = self._store.stamp()
            if stamp != self._stamp:
                found = load_installed(self._store) if stamp is not None else None
                origin = f"installed {self._store.name}"
                self._held = (TrustedLists(origin=origin, lists=found),) if found is not None else ()
                self._stamp = stamp
                if found is not None and len(found.keys) >= FREEZE_FROM:
                    _freeze_long_lived()
            return self._held


FREEZE_FROM = 10_000
"""Installed lists with at least this many keys are taken out of the cyclic collector's reach."""


def _freeze_long_lived() -> None:
    """Installed lists live until the next install: move them (hundreds of thousands of objects for a
    75,000-entry list) to the collector's permanent generation, or every full collection walks them inside
    some request (seen as 150-190 ms outliers of ``POST /verify`` at a p50 of 77 ms; p99 97 ms frozen).
    What the previous lists left as cyclic garbage is collected first; they themselves are freed by
    reference counting as usual."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
