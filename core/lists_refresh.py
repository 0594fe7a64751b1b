"""Refreshing the sanctions and high-risk lists from their publishers (ORR P1-CMP-09).

A sources file (YAML, default ``<data>/lists/sources.yaml``) names each list by URL or path. A refresh
downloads every source into a staging directory (size-capped, transient failures retried), builds the
``cap-lists.v1`` document exactly as ``cap lists build`` does, and replaces ``<data>/lists/lists.json``
atomically, but only when the roots changed and the new list is not suspiciously smaller than the old one
(a truncated download or an error page that still parses). Every refresh that changes the roots is in the
audit log with the sources' digests. Nothing is written when any step fails: the old lists stay in force.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from core import status
from core.canonical import pretty_bytes
from core.digest import sha3_prefixed
from core.documents import validate_model
from core.errors import CapError, ConflictError, InvalidInputError, StorageError
from core.events import sink
from core.name_keys import CURRENT_KEY_VERSION
from core.sanctions import ListFormat, load_source, read_high_risk
from core.sap.odata import retry_after_seconds
from core.screening import ListsFile, SanctionsList, build_lists
from core.settings import Settings
from core.store import audit_log, lists_store
from core.store.lists import load_installed

if TYPE_CHECKING:
    import httpx

SOURCES_SCHEMA = "cap-list-sources.v1"
DEFAULT_MAX_BYTES = 200 * 1024 * 1024  # the full OFAC and UN lists are a few MB each
DEFAULT_MIN_KEPT = 0.5  # refuse a refresh that loses more than half of the screening keys
ATTEMPTS = 4
TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504})


class ListFetchError(StorageError):
    """A source could not be downloaded or read (the old lists stay in force)."""

    code = "list_fetch_failed"


class ListShrinkError(ConflictError):
    """The new list has far fewer keys than the one in force: refused unless explicitly allowed."""

    code = "list_shrink_refused"


class Location(BaseModel):
    """Exactly one of ``url`` (http/https) and ``path``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str | None = Field(None, pattern=r"^https?://")
    path: Path | None = None

    @model_validator(mode="after")
    def _one(self) -> Location:
        if (self.url is None) == (self.path is None):
            raise ValueError("give exactly one of url and path")
        return self

    def describe(self) -> str:
        return self.url or str(self.path)


class SanctionsSource(Location):
    format: ListFormat
    alt: Location | None = Field(None, description="OFAC only: alt.csv (aliases), by url or path")

    @model_validator(mode="after")
    def _alt_only_for_ofac(self) -> SanctionsSource:
        if self.alt is not None and self.format is not ListFormat.OFAC:
            raise ValueError("alt is only for format ofac")
        return self


class ListSources(BaseModel):
    """The ``cap-list-sources.v1`` file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    schema_id: Literal["cap-list-sources.v1"] = Field(alias="schema")
    sanctions: tuple[SanctionsSource, ...] = Field(min_length=1)
    high_risk: Location | None = None
    max_bytes: int = Field(DEFAULT_MAX_BYTES, gt=0, description="per downloaded file")
    min_kept: float = Field(DEFAULT_MIN_KEPT, ge=0, le=1, description="share of the old keys a refresh keeps")


class FetchedSource(BaseModel):
    model_config = ConfigDict(frozen=True)
    location: str
    format: str
    bytes: int
    sha3_256: str


class RefreshResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    changed: bool
    lists_path: str
    sanctions_root: str
    sanctions_count: int
    jurisdiction_root: str | None
    previous_root: str | None
    previous_count: int | None
    sources: tuple[FetchedSource, ...]


def load_sources(path: Path) -> ListSources:
    """The sources file. Raises :class:`InvalidInputError` naming the file, line or field."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInputError(
            "no list sources file: write one (docs/formats/list_sources.md)", file=str(path)
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read the list sources: {exc}", file=str(path)) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InvalidInputError("list sources are not YAML", file=str(path), line=line) from None
    sources = validate_model(ListSources, doc, source=str(path), what="list sources", expected=SOURCES_SCHEMA)
    return _anchored(sources, path.parent)


def _anchored(sources: ListSources, base: Path) -> ListSources:
    """Relative ``path`` entries are relative to the sources file, wherever the refresh runs from."""

    def anchor(path: Path | None) -> Path | None:
        return base / path if path is not None and not path.is_absolute() else path

    def fix(location: Location | None) -> Location | None:
        return None if location is None else location.model_copy(update={"path": anchor(location.path)})

    sanctions = tuple(
        s.model_copy(update={"path": anchor(s.path), "alt": fix(s.alt)}) for s in sources.sanctions
    )
    return sources.model_copy(update={"sanctions": sanctions, "high_risk": fix(sources.high_risk)})


Sleep = Callable[[float], None]


class Fetcher:
    """Copies a :class:`Location` to a local file: size-capped, transient HTTP failures retried."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        max_bytes: int,
        sleep: Sleep = time.sleep,
        clock: Callable[[], float] = time.time,
        base_delay: float = 1.0,
    ) -> None:
        self.client, self.max_bytes, self.base_delay = client, max_bytes, base_delay
        self.sleep, self.clock = sleep, clock

    def fetch(self, location: Location, dest: Path) -> Path:
        if location.path is not None:
            return self._copy(location.path, dest)
        url = location.url or ""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._download(url, dest)
            except ListFetchError as exc:
                if not exc.transient or attempt == ATTEMPTS:
                    raise
                wait = exc.details.get("retry_after_s") or self.base_delay * 2 ** (attempt - 1)
                self.sleep(min(float(wait), 60.0))
        raise AssertionError("unreachable")  # pragma: no cover

    def _copy(self, source: Path, dest: Path) -> Path:
        try:
            size = source.stat().st_size
            if size > self.max_bytes:
                raise ListFetchError(
                    f"list is larger than {self.max_bytes} bytes", file=str(source), size=size
                )
            shutil.copyfile(source, dest)
        except FileNotFoundError:
            raise ListFetchError(f"list file not found: {source}", file=str(source)) from None
        except OSError as exc:
            raise ListFetchError(f"cannot read the list {source}: {exc.strerror}", file=str(source)) from None
        return dest

    def _download(self, url: str, dest: Path) -> Path:
        import httpx  # lazy: the CLI imports this module on every start; only a download needs httpx

        try:
            with self.client.stream("GET", url) as response:
                if response.status_code != 200:
                    hint = retry_after_seconds(response.headers.get("Retry-After"), self.clock())
                    raise ListFetchError(
                        f"{url} answered HTTP {response.status_code}",
                        transient=response.status_code in TRANSIENT,
                        url=url,
                        status=response.status_code,
                        retry_after_s=hint,
                    )
                written = 0
                with dest.open("wb") as out:
                    for chunk in response.iter_bytes():
                        written += len(chunk)
                        if written > self.max_bytes:
                            raise ListFetchError(f"{url} is larger than {self.max_bytes} bytes", url=url)
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise ListFetchError(f"{url}: {type(exc).__name__}", transient=True, url=url) from None
        if written == 0:
            raise ListFetchError(f"{url} returned an empty body", url=url)
        return dest


def _count(result: str) -> None:
    metrics = sink()  # the flow's worker (a child of `cap serve`) writes to the metrics dir; a CLI run not
    if metrics is not None:
        metrics.LISTS_REFRESH_TOTAL.labels(result=result).inc()


def refresh_lists(
    settings: Settings,
    sources: ListSources,
    now: datetime,
    *,
    client: httpx.Client | None = None,
    allow_shrink: bool = False,
    sleep: Sleep = time.sleep,
    actor: str = "cap",
) -> RefreshResult:
    """Download, build and (when the roots changed) install the lists. Raises a :class:`CapError` and writes
    nothing when a source fails, does not parse, or shrinks below ``min_kept`` of the keys in force."""
    try:
        result = _refresh(
            settings, sources, now, client=client, allow_shrink=allow_shrink, sleep=sleep, actor=actor
        )
    except CapError:
        _count("failure")
        raise
    _count("changed" if result.changed else "unchanged")
    with status.open_book(settings.layout.status_db) as book:
        book.record_success(status.LISTS_REFRESH, now, result.sanctions_count, result.sanctions_root)
    return result


def _refresh(
    settings: Settings,
    sources: ListSources,
    now: datetime,
    *,
    client: httpx.Client | None,
    allow_shrink: bool,
    sleep: Sleep,
    actor: str,
) -> RefreshResult:
    store = lists_store(settings)
    previous = load_installed(store)
    settings.layout.root.mkdir(parents=True, exist_ok=True)  # where the download is staged
    owned = client is None
    import httpx  # lazy, as above

    http = client or httpx.Client(timeout=60.0, follow_redirects=True, headers={"User-Agent": "cap-verifier"})
    try:
        # staged beside the data dir's files, not under lists/ (which backups copy whole)
        with tempfile.TemporaryDirectory(prefix=".lists-refresh-", dir=settings.layout.root) as tmp:
            lists, fetched = _build(
                Path(tmp), sources, now, Fetcher(http, max_bytes=sources.max_bytes, sleep=sleep)
            )
    finally:
        if owned:
            http.close()
    if previous is not None and not allow_shrink:
        _refuse_shrink(previous, lists, sources.min_kept)
    changed = previous is None or (previous.sanctions_root, previous.jurisdiction_root) != (
        lists.sanctions_root,
        lists.jurisdiction_root,
    )
    if not changed and previous is not None and previous.generated_at != lists.generated_at:
        # same roots, confirmed current now: re-stamp the build time proofs carry (ADR 0007), no audit event
        store.write(pretty_bytes(lists) + b"\n")
    if changed:
        store.write(pretty_bytes(lists) + b"\n")
        audit_log(settings).append(
            "lists_refreshed",
            {
                "actor": actor,
                "sanctions_root": lists.sanctions_root,
                "sanctions_count": lists.sanctions_count,
                "jurisdiction_root": lists.jurisdiction_root,
                "previous_root": previous.sanctions_root if previous else None,
                "sources": [f.model_dump() for f in fetched],
            },
            now,
        )
    return RefreshResult(
        changed=changed,
        lists_path=store.name,
        sanctions_root=lists.sanctions_root,
        sanctions_count=lists.sanctions_count,
        jurisdiction_root=lists.jurisdiction_root,
        previous_root=previous.sanctions_root if previous else None,
        previous_count=previous.sanctions_count if previous else None,
        sources=tuple(fetched),
    )


def _build(
    staging: Path, sources: ListSources, now: datetime, fetcher: Fetcher
) -> tuple[ListsFile, list[FetchedSource]]:
    fetched: list[FetchedSource] = []

    def get(location: Location, dest: Path, fmt: str) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        local = fetcher.fetch(location, dest)
        data = local.read_bytes()
        fetched.append(
            FetchedSource(
                location=location.describe(), format=fmt, bytes=len(data), sha3_256=sha3_prefixed(data)
            )
        )
        return local

    loaded = []
    for index, source in enumerate(sources.sanctions):
        folder = staging / str(index)
        name = {ListFormat.OFAC: "sdn.csv", ListFormat.UN: "consolidated.xml"}.get(source.format, "list.csv")
        main = get(source, folder / name, source.format.value)
        alt = get(source.alt, folder / "alt.csv", "ofac-alt") if source.alt is not None else None
        try:
            loaded.append(load_source(main, source.format, alt_path=alt))
        except CapError as exc:
            raise InvalidInputError(
                f"{source.describe()} does not parse as {source.format.value}: {exc.message}",
                source=source.describe(),
            ) from None
    levels = None
    if sources.high_risk is not None:
        levels = read_high_risk(get(sources.high_risk, staging / "high_risk.csv", "high-risk"))
    entries = [e for item in loaded for e in item.entries]
    sanctions = SanctionsList.from_entries(
        entries, [s.describe() for s in sources.sanctions], CURRENT_KEY_VERSION
    )
    return build_lists(sanctions, [item.source for item in loaded], now, levels), fetched


def _refuse_shrink(previous: ListsFile, new: ListsFile, min_kept: float) -> None:
    if previous.sanctions_count and new.sanctions_count < previous.sanctions_count * min_kept:
        raise ListShrinkError(
            f"the new lists have {new.sanctions_count} screening keys, the lists in force "
            f"{previous.sanctions_count}: more than {1 - min_kept:.0%} would be lost "
            "(a truncated download?); check the sources, or refresh with --allow-shrink",
            found=new.sanctions_count,
            expected=f">= {int(previous.sanctions_count * min_kept)}",
        )


def report_markdown(result: RefreshResult) -> str:
    """The ``lists-refresh`` artifact: verdict, roots and counts, and every source with its digest."""
    rows = "\n".join(f"| {s.format} | {s.location} | {s.bytes:,} | `{s.sha3_256}` |" for s in result.sources)
    verdict = "changed" if result.changed else "unchanged"
    return (
        f"# Lists refresh: {verdict}\n\n"
        f"- sanctions root `{result.sanctions_root}` ({result.sanctions_count:,} screening keys); "
        f"before `{result.previous_root}` ({result.previous_count})\n"
        f"- jurisdiction root `{result.jurisdiction_root}`\n- installed at `{result.lists_path}`\n\n"
        f"| format | source | bytes | SHA3-256 |\n|---|---|---|---|\n{rows}\n"
    )
