"""Screening vectors: normalisation, a fixed sanctions tree, (non-)membership proofs and named negatives.

Every negative is a copy of a valid proof changed in one way, named for the rule it breaks; each file
carries ``expected`` (true/false). Inputs are fixed names, so the bytes never change.
"""

from __future__ import annotations

from typing import Any

from core.canonical import canonical_obj
from core.digest import blake3_hex
from core.merkle import EMPTY_ROOT
from core.name_keys import KeyVersion, normalise_name, screening_key
from core.sanctions import RiskLevel, SanctionsEntry, flat_sanctions_root, jurisdiction_root
from core.screening import SanctionsList

NORMALISATION_CASES = [
    ("LOGAN MOREY, Elvis Angus", "order and case: surname-first OFAC style"),
    ("Elvis Angus Logan Morey", "order and case: given-name first"),
    ("Müller GmbH", "diacritic dropped by NFKD, legal form dropped"),
    ("Mueller", "ue is not folded to u: different key, near match only"),
    ("Straße", "casefold expands sharp s"),
    ("TNK TRADING INTERNATIONAL S.A.", "dotted legal form joined then dropped"),
    ("SUEX OTC, S.R.O.", "s.r.o. dropped"),
    ("Paek Ch'ang-Ho", "apostrophe deleted, hyphen spaced"),
    ("ＡＣＭＥ Ltd.", "fullwidth letters folded by NFKD"),
    ("AG", "a name of legal forms only keeps them"),
    ("Ørsted A/S", "letters without decomposition are kept; A/S joined and dropped"),
    ("  Jean-Luc   PICARD  ", "extra whitespace"),
]

#: screening-key.v2 (docs/adr/0008): ASCII names keep their v1 key; the rest are folded to ASCII first.
NORMALISATION_V2_CASES = [
    ("LOGAN MOREY, Elvis Angus", "ASCII: the v1 normal form and key, byte for byte"),
    ("TNK TRADING INTERNATIONAL S.A.", "ASCII: legal form dropped as in v1"),
    (
        "\u0399RAN AIRCRAFT MANUFACTURING INDUSTRIAL COMPANY",
        "Greek capital Iota in a Latin word: UTS #39 fold",
    ),
    ("IRAN AIRCR\u0410FT", "Cyrillic capital A in a Latin word: UTS #39 fold"),
    ("\u041d\u041e\u0420\u0395", "Cyrillic and Greek mixed in one word: a spoof, folded to Latin"),
    ("\u041d\u041e\u0420\u0415", "one Cyrillic word: transliterated, not folded (HOPE would be wrong)"),
    (
        "\u0425\u043e\u0440\u043e\u0448\u0435\u0432 \u0414\u043c\u0438\u0442\u0440\u0438\u0439",
        "Cyrillic: anyascii",
    ),
    ("\u0631\u0627\u062d\u062a \u0644\u0645\u062a\u062f", "Arabic (UN NAME_ORIGINAL_SCRIPT): anyascii"),
    ("\u0391\u03b8\u03ae\u03bd\u03b1", "Greek word: transliterated"),
    ("M\u00fcl\u200bler GmbH", "zero-width space deleted, accent dropped"),
    ("\u00d8rsted A/S", "o-slash transliterated (v1 kept it)"),
    ("\uff21\uff23\uff2d\uff25 Ltd.", "fullwidth: NFKC"),
    ("Paek Ch\u2019ang-Ho", "curly apostrophe deleted as in v1"),
]

TREE_NAMES = [
    "LOGAN MOREY, Elvis Angus",
    "HESA TRADE CENTER",
    "KHOROSHEV, Dmitry Yuryevich",
    "RAHAT LTD.",
    "PAEK CHANG-HO",
    "KOREA RYONBONG GENERAL CORPORATION",
    "Amin Industrial Compound",
    "NS LEADER",
]
ABSENT_NAME = "Acme Trading GmbH"


def _tree() -> SanctionsList:
    entries = [
        SanctionsEntry(source="vec", entry_id=str(i), primary_name=n) for i, n in enumerate(TREE_NAMES)
    ]
    return SanctionsList.from_entries(entries, ["vectors"])


def _absent_key(sl: SanctionsList, where: str) -> bytes:
    """An absent key between leaves 2 and 3, below the first leaf, or above the last leaf."""
    if where == "low":
        return bytes(32)
    if where == "high":
        return b"\xff" * 32
    middle = (int.from_bytes(sl.keys[2], "big") + int.from_bytes(sl.keys[3], "big")) // 2
    return middle.to_bytes(32, "big")


def _case(
    name: str,
    description: str,
    root: bytes,
    key: bytes,
    proof: dict[str, Any],
    expected: bool,
    kind: str = "non_membership",
) -> tuple[str, dict[str, Any]]:
    return f"screening/{name}.json", {
        "kind": kind,
        "description": description,
        "root": "0x" + root.hex(),
        "key": "0x" + key.hex(),
        "proof": proof,
        "expected": expected,
    }


def _flip(hex_text: str) -> str:
    return hex_text[:-1] + ("0" if hex_text[-1] != "0" else "1")


def _negatives(sl: SanctionsList) -> list[tuple[str, dict[str, Any]]]:
    key = _absent_key(sl, "interior")
    valid = canonical_obj(sl.prove_absent(key))
    i = valid["predecessor"]["index"]
    out = []
    gap = dict(valid, successor=canonical_obj(sl._neighbour(i + 2)))
    out.append(("nonmembership_gap_not_adjacent", "successor is two leaves after the predecessor", gap))
    listed = sl.keys[3]
    present = {
        "key": "0x" + listed.hex(),
        "tree_size": sl.count,
        "predecessor": canonical_obj(sl._neighbour(2)),
        "successor": canonical_obj(sl._neighbour(4)),
    }
    out.append(("nonmembership_key_present", "neighbours of a listed key (indices not consecutive)", present))
    tampered = canonical_obj(sl.prove_absent(key))
    tampered["predecessor"]["proof"]["path"][0] = _flip(tampered["predecessor"]["proof"]["path"][0])
    out.append(("nonmembership_path_tampered", "one byte of the predecessor's audit path changed", tampered))
    swapped = dict(valid, predecessor=valid["successor"], successor=valid["predecessor"])
    out.append(("nonmembership_neighbours_swapped", "predecessor > key > successor", swapped))
    index_off = canonical_obj(sl.prove_absent(key))
    index_off["successor"]["index"] = index_off["predecessor"]["index"] + 1 + 1
    out.append(
        ("nonmembership_index_mismatch", "neighbour index disagrees with its inclusion proof", index_off)
    )
    low_only = dict(valid, successor=None)
    out.append(
        (
            "nonmembership_boundary_not_last",
            "only a predecessor, but it is not the last leaf",
            {k: v for k, v in low_only.items() if v is not None},
        )
    )
    size = dict(valid, tree_size=sl.count + 1)
    out.append(("nonmembership_tree_size_mismatch", "tree_size differs from the inclusion proofs", size))
    other = dict(valid, key="0x" + _absent_key(sl, "high").hex())
    out.append(("nonmembership_wrong_key", "proof is for a different key", other))
    return [
        _case(name, desc, sl.root, key if name != "nonmembership_key_present" else listed, proof, False)
        for name, desc, proof in out
    ]


def _positives(sl: SanctionsList) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for where, name in (
        ("interior", "nonmembership_valid"),
        ("low", "nonmembership_boundary_low"),
        ("high", "nonmembership_boundary_high"),
    ):
        key = _absent_key(sl, where)
        out.append(
            _case(name, f"absent key ({where})", sl.root, key, canonical_obj(sl.prove_absent(key)), True)
        )
    empty = SanctionsList({}, [])
    key = screening_key(ABSENT_NAME)
    out.append(
        _case(
            "nonmembership_empty_list",
            "empty list: no neighbours, tree_size 0",
            EMPTY_ROOT,
            key,
            canonical_obj(empty.prove_absent(key)),
            True,
        )
    )
    out.append(
        _case(
            "nonmembership_wrong_root",
            "valid proof checked against another root",
            EMPTY_ROOT,
            key,
            canonical_obj(sl.prove_absent(key)),
            False,
        )
    )
    listed = sl.keys[5]
    out.append(
        _case(
            "membership_valid",
            "listed key with its inclusion proof",
            sl.root,
            listed,
            canonical_obj(sl.prove_present(listed)),
            True,
            kind="membership",
        )
    )
    bad = canonical_obj(sl.prove_present(listed))
    bad["proof"]["index"] = 4
    out.append(
        _case(
            "membership_wrong_index",
            "inclusion proof with a wrong index",
            sl.root,
            listed,
            bad,
            False,
            kind="membership",
        )
    )
    return out


def _lists_roots() -> dict[str, Any]:
    entries = [
        SanctionsEntry(
            source="csv",
            entry_id="eu.csv:2",
            primary_name="Saddam Hussein Al-Tikriti",
            birthdate="1937-04-28",
            nationality="IQ",
        ),
        SanctionsEntry(source="csv", entry_id="eu.csv:3", primary_name="IRGC"),
    ]
    levels = {"IR": RiskLevel.HIGH, "KP": RiskLevel.HIGH, "TR": RiskLevel.MEDIUM, "DE": RiskLevel.LOW}
    return {
        "kind": "list_roots",
        "description": "cap-flat-v1 sanctions root (original rule) and merkle jurisdiction root",
        "entries": [e.model_dump() for e in entries],
        "flat_sanctions_root": flat_sanctions_root(entries),
        "flat_leaves": [
            blake3_hex(f"{e.primary_name}|{e.birthdate or ''}|{e.nationality or ''}".encode())
            for e in entries
        ],
        "high_risk": {k: v.value for k, v in levels.items()},
        "jurisdiction_root": jurisdiction_root(levels),
    }


def _tree_v2() -> dict[str, Any]:
    names = [*TREE_NAMES, "\u0631\u0627\u062d\u062a \u0644\u0645\u062a\u062f", "\u00d8rsted"]
    entries = [SanctionsEntry(source="vec", entry_id=str(i), primary_name=n) for i, n in enumerate(names)]
    sl = SanctionsList.from_entries(entries, ["vectors"], KeyVersion.V2)
    return {
        "kind": "tree",
        "key_version": KeyVersion.V2.value,
        "names": names,
        "normalised": sorted(normalise_name(n, KeyVersion.V2) for n in names),
        "keys": ["0x" + k.hex() for k in sl.keys],
        "sanctions_root": sl.root_hex,
        "count": sl.count,
    }


def vectors() -> dict[str, object]:
    sl = _tree()
    out: dict[str, object] = {
        "screening/normalisation.json": {
            "kind": "normalisation",
            "cases": [
                {
                    "input": s,
                    "normalised": normalise_name(s),
                    "key": "0x" + screening_key(s).hex(),
                    "note": note,
                }
                for s, note in NORMALISATION_CASES
            ],
        },
        "screening/sanctions_tree.json": {
            "kind": "tree",
            "names": TREE_NAMES,
            "normalised": sorted(normalise_name(n) for n in TREE_NAMES),
            "keys": ["0x" + k.hex() for k in sl.keys],
            "sanctions_root": sl.root_hex,
            "count": sl.count,
        },
        "screening/list_roots.json": _lists_roots(),
        "screening/normalisation_v2.json": {
            "kind": "normalisation",
            "key_version": KeyVersion.V2.value,
            "cases": [
                {
                    "input": s,
                    "normalised": normalise_name(s, KeyVersion.V2),
                    "key": "0x" + screening_key(s, KeyVersion.V2).hex(),
                    "note": note,
                }
                for s, note in NORMALISATION_V2_CASES
            ],
        },
        "screening/sanctions_tree_v2.json": _tree_v2(),
    }
    out.update(_positives(sl))
    out.update(_negatives(sl))
    return out
