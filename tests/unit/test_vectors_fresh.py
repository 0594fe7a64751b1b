"""The committed vectors are exactly what the generators produce (fixed seeds, fixed clocks)."""

from tests.vectorgen import VECTORS_DIR, generate_all


def test_every_generated_vector_is_committed_byte_for_byte():
    generated = generate_all()
    assert generated, "no vector generators found"
    stale = [
        rel
        for rel, data in generated.items()
        if not (VECTORS_DIR / rel).is_file() or (VECTORS_DIR / rel).read_bytes() != data
    ]
    assert not stale, f"vectors out of date, run `python -m tests.vectorgen`: {stale}"


def test_no_orphan_vector_files():
    generated = set(generate_all())
    on_disk = {p.relative_to(VECTORS_DIR).as_posix() for p in VECTORS_DIR.rglob("*.json")}
    assert on_disk <= generated, f"vector files no generator produces: {sorted(on_disk - generated)}"
