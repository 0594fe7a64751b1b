"""Where backups are stored, by URI: ``file://<dir>`` and ``s3://bucket/prefix``.

Layout (both backends): ``<id>.tar.gz[.enc]`` (the archive) and ``<id>.manifest.json`` beside it.
The manifest is written last, so a backup exists exactly when its manifest does. Nothing is ever
overwritten: file writes link a finished temp file to its final name (``EEXIST`` = conflict); S3
checks before writing and sends ``If-None-Match: *``. S3 archives go up in multipart parts with
retries; any failure aborts the multipart upload so no partial object is left. botocore errors are
translated to :class:`StorageError` in :func:`boto_errors` and nowhere else; local file-system errors
(``ENOSPC``, ``EACCES`` …) in :func:`file_errors`.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from pydantic import BaseModel, ConfigDict

from core.backup.manifest import check_backup_id, parse_manifest
from core.errors import ConfigError, ConflictError, IntegrityError, NotFoundError, StorageError
from core.fsio import fsync_dir

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, ListObjectsV2OutputTypeDef

MANIFEST_SUFFIX = ".manifest.json"
PART_SIZE = 8 << 20
ENDPOINT_ENV = "CAP_S3_ENDPOINT_URL"
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "KMSInternalException",
        "BadDigest",
    }
)
_INTEGRITY_CODES = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})
T = TypeVar("T")


@contextlib.contextmanager
def boto_errors(operation: str, key: str) -> Iterator[None]:
    """The one translation of botocore exceptions into CAP errors (chained with ``from``)."""
    try:
        yield
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code == "NoSuchBucket":  # the store itself is missing: a configuration error, not a missing backup
            bucket = err.get("BucketName") or "the store's bucket"
            raise ConfigError(
                f"{operation}: S3 bucket {bucket} does not exist",
                code="backup_store_missing",
                field="store URI",
                expected="an existing bucket (create it, or fix --to/--from / CAP_BACKUP_URI)",
            ) from exc
        if code in ("NoSuchKey", "404", "NotFound", "NoSuchUpload") or status == 404:
            raise NotFoundError(f"{operation}: not found", key=key) from exc
        if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
            raise ConflictError(f"{operation}: object already exists", key=key) from exc
        if code in _INTEGRITY_CODES:
            raise IntegrityError(f"{operation}: {code}", code="backup_key_unwrap", key=key) from exc
        transient = status >= 500 or status == 429 or code in _TRANSIENT_CODES
        raise StorageError(f"{operation} failed: {code or status}", transient=transient, key=key) from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        raise StorageError(f"{operation}: connection failed", transient=True, key=key) from exc
    except BotoCoreError as exc:
        raise StorageError(f"{operation} failed: {type(exc).__name__}", transient=False, key=key) from exc


def retry_transient(
    fn: Callable[[], T],
    *,
    attempts: int = 5,
    base_delay: float = 0.1,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn``, retrying :class:`StorageError` with ``transient=True`` with exponential backoff."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except StorageError as exc:
            if not exc.transient or attempt == attempts:
                raise
            sleep(min(base_delay * 2 ** (attempt - 1), 5.0) * (0.5 + random.random()))  # noqa: S311
    raise AssertionError("unreachable")


class BackupListing(BaseModel):
    model_config = ConfigDict(frozen=True)
    backup_id: str
    created_at: str | None
    archive_name: str | None
    size_bytes: int | None
    readable: bool = True


class ArchiveSink(Protocol):
    """Receives archive bytes in order; ``commit`` publishes them, ``abort`` leaves nothing behind."""

    def write(self, data: bytes) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class BackupStore(Protocol):
    uri: str

    def exists(self, backup_id: str) -> bool: ...

    def open_archive(self, backup_id: str, name: str) -> ArchiveSink: ...

    def put_manifest(self, backup_id: str, data: bytes) -> None: ...

    def get_manifest(self, backup_id: str) -> bytes: ...

    def fetch_archive(self, name: str, dest_dir: Path) -> tuple[Path, bool]: ...

    def list_backups(self) -> list[BackupListing]: ...

    def delete(self, backup_id: str) -> None: ...

    def discard_archive(self, name: str) -> None: ...


@contextlib.contextmanager
def file_errors(operation: str, path: Path) -> Iterator[None]:
    """Translate an ``OSError`` of a local store or staging write into :class:`StorageError` (chained)."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise StorageError(f"{operation} failed: {reason}", file=str(path), errno=exc.errno) from exc


def _listing(backup_id: str, data: bytes | None) -> BackupListing:
    if data is None:
        return BackupListing(
            backup_id=backup_id, created_at=None, archive_name=None, size_bytes=None, readable=False
        )
    try:
        m = parse_manifest(data, source=backup_id + MANIFEST_SUFFIX)
    except IntegrityError:
        return BackupListing(
            backup_id=backup_id, created_at=None, archive_name=None, size_bytes=None, readable=False
        )
    return BackupListing(
        backup_id=backup_id,
        created_at=m.created_at,
        archive_name=m.archive.name,
        size_bytes=m.archive.size_bytes,
    )


class _FileSink:
    def __init__(self, final: Path) -> None:
        self._final = final
        self._tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.part")
        with file_errors("create", self._tmp):
            self._fh = open(self._tmp, "xb", buffering=0)  # noqa: SIM115 - closed in commit/abort

    def write(self, data: bytes) -> None:
        with file_errors("write", self._tmp):
            self._fh.write(data)

    def commit(self) -> None:
        with file_errors("sync", self._tmp):
            os.fsync(self._fh.fileno())
            self._fh.close()
        try:
            os.link(self._tmp, self._final)
        except FileExistsError as exc:
            raise ConflictError("backup archive already exists", file=str(self._final)) from exc
        finally:
            self._tmp.unlink(missing_ok=True)
        fsync_dir(self._final.parent)

    def abort(self) -> None:
        self._fh.close()
        self._tmp.unlink(missing_ok=True)


class FileStore:
    """Backups in a local directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = root.resolve().as_uri()

    def _path(self, name: str) -> Path:
        return self.root / name

    def exists(self, backup_id: str) -> bool:
        return self.root.is_dir() and any(self.root.glob(f"{check_backup_id(backup_id)}.*"))

    def open_archive(self, backup_id: str, name: str) -> ArchiveSink:
        with file_errors("mkdir", self.root):
            self.root.mkdir(parents=True, exist_ok=True)
        if self.exists(backup_id):
            raise ConflictError("backup id already exists", backup_id=backup_id)
        return _FileSink(self._path(name))

    def put_manifest(self, backup_id: str, data: bytes) -> None:
        sink = _FileSink(self._path(check_backup_id(backup_id) + MANIFEST_SUFFIX))
        try:
            sink.write(data)
        except BaseException:
            sink.abort()
            raise
        sink.commit()

    def get_manifest(self, backup_id: str) -> bytes:
        try:
            return self._path(check_backup_id(backup_id) + MANIFEST_SUFFIX).read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError("no such backup", backup_id=backup_id) from exc

    def fetch_archive(self, name: str, dest_dir: Path) -> tuple[Path, bool]:
        """The archive's local path (in place, so ``False``: not a temporary copy)."""
        path = self._path(name)
        if not path.is_file():
            raise NotFoundError("backup archive missing", file=str(path))
        return path, False

    def list_backups(self) -> list[BackupListing]:
        if not self.root.is_dir():
            return []
        out = []
        for path in sorted(self.root.glob("*" + MANIFEST_SUFFIX)):
            out.append(_listing(path.name.removesuffix(MANIFEST_SUFFIX), path.read_bytes()))
        return out

    def delete(self, backup_id: str) -> None:
        data = self.get_manifest(backup_id)
        listing = _listing(backup_id, data)
        self._path(backup_id + MANIFEST_SUFFIX).unlink()
        for name in (listing.archive_name, backup_id + ".tar.gz", backup_id + ".tar.gz.enc"):
            if name:
                self._path(name).unlink(missing_ok=True)
        fsync_dir(self.root)

    def discard_archive(self, name: str) -> None:
        """Remove an archive whose manifest could not be written (no backup exists without one)."""
        self._path(name).unlink(missing_ok=True)


class _S3Sink:
    def __init__(self, store: S3Store, key: str) -> None:
        self._s, self._key = store, key
        self._buf = bytearray()
        self._parts: list[CompletedPartTypeDef] = []
        self._upload_id: str = store.call(
            "CreateMultipartUpload", key, lambda c: c.create_multipart_upload(Bucket=store.bucket, Key=key)
        )["UploadId"]

    def _upload(self, data: bytes) -> None:
        number = len(self._parts) + 1
        out = self._s.call(
            "UploadPart",
            self._key,
            lambda c: c.upload_part(
                Bucket=self._s.bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=data
            ),
        )
        self._parts.append({"ETag": out["ETag"], "PartNumber": number})

    def write(self, data: bytes) -> None:
        self._buf += data
        while len(self._buf) >= self._s.part_size:
            self._upload(bytes(self._buf[: self._s.part_size]))
            del self._buf[: self._s.part_size]

    def commit(self) -> None:
        if self._buf or not self._parts:
            self._upload(bytes(self._buf))
            self._buf = bytearray()
        self._s.call(
            "CompleteMultipartUpload",
            self._key,
            lambda c: c.complete_multipart_upload(
                Bucket=self._s.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
                IfNoneMatch="*",
            ),
        )

    def abort(self) -> None:
        with contextlib.suppress(StorageError):
            self._s.call(
                "AbortMultipartUpload",
                self._key,
                lambda c: c.abort_multipart_upload(
                    Bucket=self._s.bucket, Key=self._key, UploadId=self._upload_id
                ),
            )


class S3Store:
    """Backups under ``s3://bucket/prefix`` through boto3."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str = "",
        *,
        part_size: int = PART_SIZE,
        attempts: int = 5,
        base_delay: float = 0.1,
    ) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")
        self.part_size, self.attempts, self.base_delay = part_size, attempts, base_delay
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def call(self, operation: str, key: str, fn: Callable[[S3Client], T]) -> T:
        """One S3 call with translation and retries of transient failures."""

        def once() -> T:
            with boto_errors(f"s3:{operation}", key):
                return fn(self.client)

        return retry_transient(once, attempts=self.attempts, base_delay=self.base_delay)

    def _head(self, name: str) -> bool:
        key = self.key(name)
        try:
            self.call("HeadObject", key, lambda c: c.head_object(Bucket=self.bucket, Key=key))
        except NotFoundError:
            return False
        return True

    def exists(self, backup_id: str) -> bool:
        bid = check_backup_id(backup_id)
        return any(self._head(bid + s) for s in (MANIFEST_SUFFIX, ".tar.gz", ".tar.gz.enc"))

    def open_archive(self, backup_id: str, name: str) -> ArchiveSink:
        if self.exists(backup_id):
            raise ConflictError("backup id already exists", backup_id=backup_id)
        return _S3Sink(self, self.key(name))

    def put_manifest(self, backup_id: str, data: bytes) -> None:
        key = self.key(check_backup_id(backup_id) + MANIFEST_SUFFIX)
        self.call(
            "PutObject",
            key,
            lambda c: c.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType="application/json", IfNoneMatch="*"
            ),
        )

    def get_manifest(self, backup_id: str) -> bytes:
        key = self.key(check_backup_id(backup_id) + MANIFEST_SUFFIX)
        return self.call("GetObject", key, lambda c: c.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def fetch_archive(self, name: str, dest_dir: Path) -> tuple[Path, bool]:
        """Download the archive into ``dest_dir``; returns (path, True: a temporary copy)."""
        key, dest = self.key(name), dest_dir / name

        def download() -> Path:
            with boto_errors("s3:GetObject", key), open(dest, "wb") as fh:
                body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
                shutil.copyfileobj(body, fh, 1 << 20)
            return dest

        return self._retry(download), True

    def _retry(self, fn: Callable[[], T]) -> T:
        return retry_transient(fn, attempts=self.attempts, base_delay=self.base_delay)

    def _list_page(self, token: str | None) -> ListObjectsV2OutputTypeDef:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.key("")}
        if token:
            kwargs["ContinuationToken"] = token
        return self.call("ListObjectsV2", self.key(""), lambda c: c.list_objects_v2(**kwargs))

    def list_backups(self) -> list[BackupListing]:
        out: list[BackupListing] = []
        token: str | None = None
        while True:
            page = self._list_page(token)
            for obj in page.get("Contents", []):
                name = obj["Key"].rsplit("/", 1)[-1]
                if name.endswith(MANIFEST_SUFFIX):
                    bid = name.removesuffix(MANIFEST_SUFFIX)
                    out.append(_listing(bid, self.get_manifest(bid)))
            token = page.get("NextContinuationToken")
            if not token:
                return sorted(out, key=lambda b: b.backup_id)

    def discard_archive(self, name: str) -> None:
        """Remove an archive whose manifest could not be written (no backup exists without one)."""
        key = self.key(name)
        with contextlib.suppress(StorageError):
            self.call("DeleteObject", key, lambda c: c.delete_object(Bucket=self.bucket, Key=key))

    def delete(self, backup_id: str) -> None:
        listing = _listing(backup_id, self.get_manifest(backup_id))
        names = [
            backup_id + MANIFEST_SUFFIX,
            listing.archive_name,
            backup_id + ".tar.gz",
            backup_id + ".tar.gz.enc",
        ]
        for name in dict.fromkeys(n for n in names if n):
            self._delete_key(self.key(name))

    def _delete_key(self, key: str) -> None:
        self.call("DeleteObject", key, lambda c: c.delete_object(Bucket=self.bucket, Key=key))


def s3_client(endpoint_url: str | None = None, *, env: Mapping[str, str] | None = None) -> S3Client:
    """A boto3 S3 client; botocore's own retries are off because :func:`retry_transient` owns them."""
    import boto3
    from botocore.config import Config

    env = os.environ if env is None else env
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60)
    return boto3.client("s3", endpoint_url=endpoint_url or env.get(ENDPOINT_ENV) or None, config=cfg)


def open_store(
    uri: str | Path,
    *,
    client: S3Client | None = None,
    endpoint_url: str | None = None,
    env: Mapping[str, str] | None = None,
) -> BackupStore:
    """The store for ``file://<dir>``, a plain path or ``s3://bucket/prefix``. Raises :class:`ConfigError`."""
    text = str(uri)
    parsed = urlparse(text)
    if parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme == "file" else text)
        if parsed.scheme == "file" and parsed.netloc:
            path = Path(parsed.netloc + parsed.path)
        return FileStore(path)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ConfigError("s3 backup URI needs a bucket", field="uri", expected="s3://bucket/prefix")
        return S3Store(client or s3_client(endpoint_url, env=env), parsed.netloc, parsed.path)
    raise ConfigError(
        "unsupported backup storage URI", field="uri", expected="file://<dir> or s3://bucket/prefix"
    )
