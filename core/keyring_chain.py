"""The signed keyring: ``keyring.chain.json`` (``cap-keyring-chain.v1``), one signed link per version.

Owns the link record and its signing bytes, the acceptance rule (:func:`check_chain`, no I/O) and the
few file operations around it (:func:`append_link`, :func:`load_trusted_keyring`, :func:`chain_guard`).

Each link names a keyring version, the SHA3-256 of that version's exact file bytes and its default
signer (kid and public key), and is signed either by the *outgoing* signer — the default signer of the
previous link, so a rotation, revocation or revert is signed by the key that was in charge — or by an
*operator* key pinned in the settings (``CAP_OPERATOR_PUBLIC_KEYS``), which signs a bootstrap and
re-anchors a restored or repaired keyring. Without pinned operator keys the first link may be
*bootstrap*: self-signed by the first key (trust on first use; refused once operator keys are pinned).

So a keyring with a higher version that adds an attacker's key is refused unless its link is signed by
the previous default signer's private key or an operator key. Rollback to an older, validly signed
keyring is refused by the floor (:mod:`core.keyring`, ``keyring.floor.json``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.canonical import canonical_bytes, pretty_bytes
from core.documents import parse_model
from core.errors import IntegrityError
from core.fsio import atomic_write
from core.keyring import Keyring, floor_path, parse_keyring, read_floor, read_keyring_bytes
from core.keys import Kid
from core.signing import Signer, derive_kid, verify_signature

CHAIN_SCHEMA: Final = "cap-keyring-chain.v1"
CHAIN_FILE: Final = "keyring.chain.json"
LINK_DOMAIN: Final = b"cap-keyring-link.v1\n"


class LinkSigner(StrEnum):
    OUTGOING = "outgoing"
    OPERATOR = "operator"
    BOOTSTRAP = "bootstrap"


class ChainLink(BaseModel):
    """One keyring version vouched for: what the file was and who was in charge after it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=1)
    keyring_sha3_256: str = Field(pattern=r"^0x[0-9a-f]{64}$")
    default_signing_kid: Kid
    default_public_key: str
    signer: LinkSigner
    signer_kid: Kid
    signature: str | None = None


class KeyringChain(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_: Literal["cap-keyring-chain.v1"] = Field(default=CHAIN_SCHEMA, alias="schema")
    links: tuple[ChainLink, ...]


class ChainVerdict(BaseModel):
    """Outcome of :func:`check_chain`: ``reason`` names the first problem and ``failed_version`` its link."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    reason: str = ""
    failed_version: int | None = None
    signed_by: LinkSigner | None = None


OperatorKeys = Sequence[str]
"""Pinned operator public keys (standard base64 Ed25519)."""


def chain_path(keyring_path: str | Path) -> Path:
    return Path(keyring_path).with_name(CHAIN_FILE)


def keyring_digest(data: bytes) -> str:
    return "0x" + hashlib.sha3_256(data).hexdigest()


def link_signing_bytes(link: ChainLink) -> bytes:
    return LINK_DOMAIN + canonical_bytes(link.model_copy(update={"signature": None}))


def sign_link(keyring: Keyring, data: bytes, signer: Signer, role: LinkSigner) -> ChainLink:
    """The link for ``keyring`` (stored as ``data``) signed by ``signer`` in ``role``."""
    unsigned = ChainLink(
        version=keyring.version,
        keyring_sha3_256=keyring_digest(data),
        default_signing_kid=keyring.default_signing_kid,
        default_public_key=keyring.default_entry.public_key,
        signer=role,
        signer_kid=signer.kid,
    )
    sig = base64.b64encode(signer.sign(link_signing_bytes(unsigned))).decode("ascii")
    return unsigned.model_copy(update={"signature": sig})


# --- the acceptance rule (pure) ---------------------------------------------------------------------------


def _signature_ok(link: ChainLink, public_key: str) -> bool:
    try:
        raw = base64.b64decode(link.signature or "", validate=True)
    except (binascii.Error, ValueError):
        return False
    return derive_kid(public_key) == link.signer_kid and verify_signature(
        public_key, raw, link_signing_bytes(link)
    )


def _outgoing_key(link: ChainLink, previous: ChainLink, before: ChainLink | None) -> str | None:
    """The public key an outgoing link may be signed with: the previous version's default signer, or the
    key that signed the previous version (so the key that made a step can revert it)."""
    if link.signer_kid == previous.default_signing_kid:
        return previous.default_public_key
    if (
        link.signer_kid == previous.signer_kid
        and previous.signer is LinkSigner.OUTGOING
        and before is not None
    ):
        return before.default_public_key if before.default_signing_kid == link.signer_kid else None
    return None


def _link_problem(
    link: ChainLink, previous: ChainLink | None, operators: dict[str, str], before: ChainLink | None = None
) -> str | None:
    if derive_kid(link.default_public_key) != link.default_signing_kid:
        return "default_signing_kid does not match default_public_key"
    if previous is not None and link.version <= previous.version:
        return f"version {link.version} does not follow {previous.version}"
    if link.signer is LinkSigner.OPERATOR:
        key = operators.get(link.signer_kid)
        if key is None:
            return f"operator key {link.signer_kid} is not pinned"
    elif link.signer is LinkSigner.OUTGOING:
        if previous is None:
            return "the first link has no outgoing signer"
        key = _outgoing_key(link, previous, before)
        if key is None:
            return f"signed by {link.signer_kid}, not by the outgoing signer {previous.default_signing_kid}"
    else:
        if previous is not None or operators:
            return "a self-signed bootstrap link is only accepted first and without pinned operator keys"
        if link.signer_kid != link.default_signing_kid:
            return "a bootstrap link must be signed by its own default signer"
        key = link.default_public_key
    return None if _signature_ok(link, key) else "signature does not verify"


def _anchor(links: Sequence[ChainLink], operators: dict[str, str]) -> int:
    """Index of the last valid operator-signed link (trust restarts there), else 0."""
    for index in range(len(links) - 1, -1, -1):
        link = links[index]
        key = operators.get(link.signer_kid)
        if link.signer is LinkSigner.OPERATOR and key is not None and _signature_ok(link, key):
            return index
    return 0


def check_chain(
    keyring: Keyring, data: bytes, chain: KeyringChain, operator_keys: OperatorKeys = ()
) -> ChainVerdict:
    """Does ``chain`` vouch for ``keyring`` (stored as ``data``)? Every link up to the keyring's version is
    checked in order from the last valid operator-signed link (or the first link); the last one must name
    exactly this version, file digest and default signer."""
    operators = {derive_kid(k): k for k in operator_keys}
    links = [x for x in chain.links if x.version <= keyring.version]  # later ones: written ahead of the file
    previous: ChainLink | None = None
    before: ChainLink | None = None
    for link in links[_anchor(links, operators) :]:
        problem = _link_problem(link, previous, operators, before)
        if problem is not None:
            return ChainVerdict(ok=False, reason=problem, failed_version=link.version)
        previous, before = link, previous
    if previous is None:
        return ChainVerdict(ok=False, reason="the chain has no links")
    head = keyring.entry(previous.default_signing_kid)
    if (
        previous.version != keyring.version
        or previous.keyring_sha3_256 != keyring_digest(data)
        or head is None
        or head.public_key != previous.default_public_key
        or previous.default_signing_kid != keyring.default_signing_kid
    ):
        return ChainVerdict(
            ok=False,
            reason=f"no signed link for keyring v{keyring.version} as stored",
            failed_version=keyring.version,
        )
    return ChainVerdict(ok=True, signed_by=previous.signer)


def require_chain(
    keyring: Keyring, data: bytes, chain: KeyringChain | None, operator_keys: OperatorKeys, *, source: str
) -> None:
    """Raise :class:`IntegrityError` ``keyring_signature_invalid`` unless ``chain`` vouches for ``keyring``.

    ``chain`` None (no chain file) is accepted only while no operator key is pinned (an unsigned legacy
    data directory); with pinned operator keys it is ``keyring_unsigned``.
    """
    if chain is None:
        if operator_keys:
            raise IntegrityError(
                "the keyring is not signed (no keyring.chain.json) but operator keys are pinned",
                code="keyring_unsigned",
                file=source,
            )
        return
    verdict = check_chain(keyring, data, chain, operator_keys)
    if not verdict.ok:
        raise IntegrityError(
            f"keyring signature chain refused: {verdict.reason}",
            code="keyring_signature_invalid",
            file=source,
            found=verdict.failed_version,
        )


# --- files ------------------------------------------------------------------------------------------------


def read_chain(path: str | Path) -> KeyringChain | None:
    """The chain at ``path`` or None when absent. Raises :class:`InvalidInputError` naming the file."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    return parse_model(KeyringChain, data, source=str(path), what="keyring chain", expected=CHAIN_SCHEMA)


def append_link(
    keyring_path: str | Path, keyring: Keyring, data: bytes, signer: Signer, role: LinkSigner
) -> ChainLink:
    """Sign ``keyring`` (as stored in ``data``) and append the link to the chain beside it."""
    link = sign_link(keyring, data, signer, role)
    write_link(keyring_path, link)
    return link


def with_link(chain: KeyringChain | None, link: ChainLink) -> KeyringChain:
    """``chain`` plus ``link``; links of its version and later (written ahead, never used) dropped."""
    kept = tuple(x for x in (chain.links if chain else ()) if x.version < link.version)
    return KeyringChain(links=(*kept, link))


def write_link(keyring_path: str | Path, link: ChainLink) -> None:
    """Append a signed ``link`` to the chain file beside the keyring at ``keyring_path``."""
    path = chain_path(keyring_path)
    atomic_write(path, pretty_bytes(with_link(read_chain(path), link)) + b"\n")


def chain_guard(
    keyring_path: str | Path, operator_keys: OperatorKeys = ()
) -> Callable[[bytes, Keyring], None]:
    """A check for :class:`core.keyring.KeyringWatcher`: the chain beside the keyring vouches for it."""
    path = chain_path(keyring_path)
    return chain_guard_from(lambda: read_chain(path), str(keyring_path), operator_keys)


def chain_guard_from(
    read: Callable[[], KeyringChain | None], source: str, operator_keys: OperatorKeys = ()
) -> Callable[[bytes, Keyring], None]:
    """:func:`chain_guard` over any chain reader (a file, a database)."""

    def guard(data: bytes, keyring: Keyring) -> None:
        require_chain(keyring, data, read(), operator_keys, source=source)

    return guard


def load_trusted_keyring(keyring_path: str | Path, operator_keys: OperatorKeys = ()) -> Keyring:
    """Read the keyring, refusing a version below the persisted floor (``keyring_rollback``) and one the
    chain does not vouch for (``keyring_signature_invalid``, ``keyring_unsigned``)."""
    path = Path(keyring_path)
    data = read_keyring_bytes(path)
    keyring = parse_keyring(data, source=str(path), min_version=read_floor(floor_path(path)))
    chain_guard(path, operator_keys)(data, keyring)
    return keyring
