"""Screening keys of names: the normalisation rule of each key version, and the key (BLAKE3 of it).

Owns :class:`KeyVersion`, :func:`normalise_name`, :func:`screening_key`, :func:`key_of_normalised` and
the legal-form tokens. ``screening-key.v1`` is the original rule: NFKD, casefold, marks dropped, dotted
acronyms joined, legal forms dropped, tokens sorted. ``screening-key.v2`` first folds a name to ASCII:
NFKC, invisible format characters deleted, confusable homoglyphs inside a *mixed-script* word sent to
their Latin prototype (UTS #39 data, ``disarm``), every other letter transliterated (``anyascii``);
then the v1 rule applies. On ASCII input both versions give the same normalised form and key.
Why and what it does not catch: docs/adr/0008-screening-key-v2.md.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from anyascii import anyascii

from core.digest import blake3_raw
from core.errors import InvalidInputError


class KeyVersion(StrEnum):
    """How a name becomes a screening key. A lists file and a proof record the one they use."""

    V1 = "screening-key.v1"
    V2 = "screening-key.v2"


#: The version new lists are built with (``cap lists build``, ``cap lists refresh``, the SAP pipeline).
CURRENT_KEY_VERSION = KeyVersion.V2

#: Entity legal-form tokens dropped by :func:`normalise_name` (compared after normalisation, so "S.A."
#: arrives here as "sa", "Co." as "co"). A name made only of such tokens keeps them.
# fmt: off
LEGAL_FORMS: tuple[str, ...] = (
    "ab", "ag", "as", "asa", "bhd", "bv", "cjsc", "co", "company", "corp", "corporation", "cv", "eg", "ev",
    "gbr", "gmbh", "inc", "incorporated", "jsc", "kft", "kg", "kgaa", "kk", "limited", "llc", "llp", "lp",
    "ltd", "ltda", "mbh", "nv", "oao", "ohg", "ojsc", "ooo", "oy", "oyj", "pao", "plc", "pllc", "pte",
    "pty", "pvt", "sa", "sab", "sae", "sal", "sarl", "sas", "se", "sl", "spa", "sprl", "sro", "srl", "ug",
    "zao",
)
# fmt: on
_LEGAL = frozenset(LEGAL_FORMS)
_ACRONYM = re.compile(r"(?:[^\W\d_][./])+[^\W\d_]?")  # "s.a." "s.r.o" "a/s" "a." → joined letters
_JOINERS = "./"  # kept by folding, then joined (acronyms) or spaced
_APOSTROPHES = frozenset("'`\u2018\u2019\u02bb\u02bc")  # deleted, not spaced: "Ch'ang" → "chang"
_ASCII_FOLD = str.maketrans(
    {chr(c): " " for c in range(128) if not chr(c).isalnum() and chr(c) not in _JOINERS}
    | {"'": None, "`": None}
)


# ------------------------------------------------------------------------------ v1: the original rule


def _fold(name: str) -> str:
    """NFKD, casefold, drop marks (category M) and apostrophes, other non-letters/digits but ./ → space."""
    return name.lower().translate(_ASCII_FOLD) if name.isascii() else _fold_unicode(name)


def _fold_unicode(name: str) -> str:
    text = unicodedata.normalize("NFKD", name).casefold()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] == "M" or ch in _APOSTROPHES:
            continue
        out.append(ch if cat[0] in "LN" or ch in _JOINERS else " ")
    return "".join(out)


def _normalise_v1(name: str) -> str:
    tokens: list[str] = []
    for chunk in _fold(name).split():
        if "." not in chunk and "/" not in chunk:
            tokens.append(chunk)
        elif _ACRONYM.fullmatch(chunk):
            tokens.append(chunk.replace(".", "").replace("/", ""))
        else:
            tokens.extend(chunk.replace(".", " ").replace("/", " ").split())
    kept = [t for t in tokens if t not in _LEGAL]
    return " ".join(sorted(kept or tokens))


# --------------------------------------------------------------------- v2: fold to ASCII, then v1


_WORD = re.compile(r"[^\W_]+")  # a run of letters and digits (str.isalnum), the unit scripts are judged on


def _unconfuse(match: re.Match[str]) -> str:
    """A mixed-script word ("ΙRAN" with a Greek Iota, "аpple") is a spoof: its confusables go Latin."""
    word = match.group()
    if word.isascii():
        return word
    # imported here: its confusable tables cost ~20 ms, which `cap verify` (it keys no names) need not pay
    from disarm import is_mixed_script, normalize_confusables

    if not is_mixed_script(word):
        return word
    return normalize_confusables(word, target_script="latin")


def _letters_only(text: str) -> str:
    """Marks (category M) deleted, apostrophes kept, other non-letters/digits outside ASCII → space."""
    out = []
    for ch in text:
        if ch.isascii() or ch.isalnum():
            out.append(ch)
        elif ch in _APOSTROPHES:
            out.append("'")
        elif unicodedata.category(ch)[0] != "M":
            out.append(" ")
    return "".join(out)


def to_ascii(name: str) -> str:
    """The v2 fold of a name to ASCII, before the v1 rule.

    Format characters (zero-width, bidi controls, soft hyphen) are deleted; confusables in mixed-script
    words are folded to Latin before NFKC (which would turn some, e.g. a lunate sigma, into other letters)
    and again after it and after marks are dropped (either can make a word mixed); then anyascii
    transliterates what is left (it reads one code point at a time, so the whole string at once).
    """
    text = "".join(c for c in name if c < "\x80" or unicodedata.category(c) != "Cf")
    text = _letters_only(unicodedata.normalize("NFKC", _WORD.sub(_unconfuse, text)))
    return anyascii(_WORD.sub(_unconfuse, text))


# ------------------------------------------------------------------------------------------ keys


def normalise_name(name: str, version: KeyVersion = KeyVersion.V1) -> str:
    """The normalised form of ``name`` under ``version`` (default: the original v1 rule).

    Screening code takes the version from its list (:attr:`SanctionsList.key_version`), never a default.
    """
    if version is KeyVersion.V2 and not name.isascii():
        name = to_ascii(name)
    return _normalise_v1(name)


def key_of_normalised(normalised: str) -> bytes:
    """BLAKE3 (32 raw bytes) of a normalised name: the same function for every key version."""
    return blake3_raw(normalised.encode("utf-8"))


def screening_key(name: str, version: KeyVersion = KeyVersion.V1) -> bytes:
    """BLAKE3 (32 raw bytes) of the normalised name. Raises InvalidInputError if nothing is left."""
    normalised = normalise_name(name, version)
    if not normalised:
        raise InvalidInputError(
            f"name {name[:60]!r} has no letters or digits",
            field="name",
            expected="a name with at least one letter or digit",
        )
    return key_of_normalised(normalised)
