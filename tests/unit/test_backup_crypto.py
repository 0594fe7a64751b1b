"""The chunked AES-256-GCM container: round trips, reorder/drop/append detection, key wrapping."""

from __future__ import annotations

import io
import struct

import boto3
import pytest
from moto import mock_aws

from core.backup.crypto import (
    MAGIC,
    ChunkEncryptor,
    KmsKeyWrapper,
    MasterKeyWrapper,
    decrypt_stream,
    parse_master_key,
)
from core.errors import ConfigError, IntegrityError

CHUNK = 64
KEY = MasterKeyWrapper(b"\x01" * 32)


def _encrypt(data: bytes, wrapper=KEY, bid="b1") -> bytes:
    enc = ChunkEncryptor(wrapper, bid, chunk_size=CHUNK)
    return enc.header() + enc.update(data[:100]) + enc.update(data[100:]) + enc.finish()


def _decrypt(blob: bytes, wrapper=KEY, bid="b1") -> bytes:
    return b"".join(decrypt_stream(io.BytesIO(blob).read, wrapper, bid))


def _split(blob: bytes):
    hlen = struct.unpack(">I", blob[len(MAGIC) + 1 : len(MAGIC) + 5])[0]
    head_end = len(MAGIC) + 5 + hlen
    body = blob[head_end:]
    return blob[:head_end], [body[i : i + CHUNK + 16] for i in range(0, len(body), CHUNK + 16)]


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 1000])
def test_round_trip(size):
    data = bytes(i % 251 for i in range(size))
    assert _decrypt(_encrypt(data)) == data


def test_reordered_chunks_fail():
    head, chunks = _split(_encrypt(bytes(300)))
    with pytest.raises(IntegrityError):
        _decrypt(head + chunks[1] + chunks[0] + b"".join(chunks[2:]))


@pytest.mark.parametrize("drop", ["last", "first"])
def test_dropped_chunk_fails(drop):
    head, chunks = _split(_encrypt(bytes(300)))
    rest = chunks[:-1] if drop == "last" else chunks[1:]
    with pytest.raises(IntegrityError):
        _decrypt(head + b"".join(rest))


def test_truncation_at_chunk_boundary_fails():
    head, chunks = _split(_encrypt(bytes(4 * CHUNK + 10)))
    with pytest.raises(IntegrityError):
        _decrypt(head + b"".join(chunks[:2]))


def test_appended_chunk_fails():
    blob = _encrypt(bytes(300))
    _, chunks = _split(blob)
    with pytest.raises(IntegrityError):
        _decrypt(blob + chunks[0])


def test_container_bound_to_backup_id():
    with pytest.raises(IntegrityError):
        _decrypt(_encrypt(b"data"), bid="b2")


def test_wrong_master_key_is_config_error():
    with pytest.raises(ConfigError) as err:
        _decrypt(_encrypt(b"data"), wrapper=MasterKeyWrapper(b"\x02" * 32))
    assert err.value.code == "backup_wrong_key"


def test_master_key_forms_and_repr():
    raw = bytes(range(32))
    assert parse_master_key(raw) == raw
    assert parse_master_key(raw.hex().encode() + b"\n") == raw
    import base64

    assert parse_master_key(base64.b64encode(raw)) == raw
    with pytest.raises(ConfigError):
        parse_master_key(b"short")
    assert raw.hex() not in repr(MasterKeyWrapper(raw))


def test_kms_wrapping_with_moto():
    with mock_aws():
        kms = boto3.client("kms", region_name="eu-central-1")
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        wrapper = KmsKeyWrapper(kms, key_id)
        blob = _encrypt(b"secret state" * 50, wrapper=wrapper)
        assert _decrypt(blob, wrapper=wrapper) == b"secret state" * 50
        assert b"secret state" not in blob
