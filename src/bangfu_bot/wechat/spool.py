"""A small on-disk journal of pushes we answered with `success` before their work committed.

WeChat does not retry a push answered with `success`, so such a push must survive a crash
or a database outage on our side: it is journaled (fsync) before the answer leaves, and
replayed until its work has committed. Each process owns one file, locked with flock; a
file whose lock can be taken belongs to a process that died, and is adopted.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import json
import logging
import os
import secrets
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


class JournalUnavailable(Exception):
    """The journal cannot be written (its directory, its file or the disk): a push cannot
    be held, so it must not be answered `success`. The message names the path and cause."""


class Spool:
    """Journal of pushes awaiting a committed answer, keyed by dedupe key.

    Only keys and file offsets stay in memory (a push's XML is read back from the file when
    it is replayed), so a long overload costs disk, not memory. Writers in the event loop
    share one fsync, run in a thread, instead of blocking the loop with one each.
    """

    def __init__(self, directory: str | Path) -> None:
        self._dir = Path(directory)
        self._entries: dict[str, tuple[int, int]] = {}  # key -> (offset, length) of its record
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._end = 0
        self._written = 0  # records appended so far
        self._synced = 0  # records known to be on disk
        self._syncing: asyncio.Future[None] | None = None
        self._error: str | None = None  # why the last write or fsync failed, until one works

    def open(self) -> None:
        """Create this process's journal and adopt those of dead processes; raise
        JournalUnavailable naming the directory and the cause if it cannot be written."""
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            self._path = self._dir / f"spool-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
            self._file = open(self._path, "a+b")  # noqa: SIM115 - held open
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._end = os.fstat(self._file.fileno()).st_size
            self._file.write(b"")
            os.fsync(self._file.fileno())
        except OSError as error:
            raise JournalUnavailable(
                f"cannot write the journal in {self._dir}: {error.strerror or error}"
            ) from None
        self._adopt_orphans()

    @property
    def healthy(self) -> str | None:
        """None when pushes can be journaled, else why not."""
        if self._file is None:
            return f"journal in {self._dir} is not open"
        return self._error

    def close(self) -> None:
        """Close the journal; an empty one is removed, a non-empty one is left to adopt."""
        if self._file is None:
            return
        self._file.close()
        self._file = None
        if not self._entries and self._path is not None:
            self._path.unlink(missing_ok=True)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def pending(self, limit: int | None = None) -> list[tuple[str, str]]:
        """The (dedupe key, push XML) pairs still waiting, oldest first (at most `limit`)."""
        keys = list(itertools.islice(self._entries, limit))
        return [(key, xml) for key in keys if (xml := self._xml(key)) is not None]

    def add(self, key: str, xml: str) -> None:
        """Journal a push durably (returns after fsync; blocks: for start-up and tests)."""
        if self._append(key, xml) and self._file is not None:
            os.fsync(self._file.fileno())
            self._synced = self._written

    async def journal(self, key: str, xml: str) -> None:
        """Journal a push durably; returns once it is on disk. Concurrent callers share an
        fsync: under overload this is what every shed push waits for."""
        if self._file is None:
            raise JournalUnavailable(f"journal in {self._dir} is not open")
        self._append(key, xml)
        target = self._written
        while self._synced < target and self._file is not None:
            if self._syncing is None:
                self._syncing = asyncio.ensure_future(self._fsync())
            await asyncio.shield(self._syncing)
        if self._synced < target:
            raise JournalUnavailable(self._error or f"journal in {self._dir} closed")

    def resolve(self, key: str) -> None:
        """Mark a push as committed; the journal is truncated once nothing waits. (Not
        fsynced: a lost mark only makes a replay find the push already answered.)"""
        if self._entries.pop(key, None) is None:
            return
        if self._entries:
            with contextlib.suppress(JournalUnavailable):  # a lost mark only costs a replay
                self._write({"key": key, "done": True})
        elif self._file is not None:
            self._file.truncate(0)
            self._end = 0

    async def _fsync(self) -> None:
        assert self._file is not None
        upto = self._written
        try:
            await asyncio.to_thread(os.fsync, self._file.fileno())
            self._synced = max(self._synced, upto)
            self._error = None
        except OSError as error:
            self._failed(error)
            raise JournalUnavailable(self._error) from None
        finally:
            self._syncing = None

    def _failed(self, error: OSError) -> None:
        self._error = f"cannot write the journal {self._path}: {error.strerror or error}"

    def _append(self, key: str, xml: str) -> bool:
        if key in self._entries:
            return False
        self._entries[key] = self._write({"key": key, "xml": xml})
        return True

    def _write(self, record: dict[str, object]) -> tuple[int, int]:
        if self._file is None:
            raise JournalUnavailable(f"journal in {self._dir} is not open")
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        # After a failed write the file may end in a torn line: start on a fresh one.
        lead = b"\n" if self._error else b""
        try:
            self._file.write(lead + data)
            self._file.flush()
        except OSError as error:
            self._failed(error)
            with contextlib.suppress(OSError, ValueError):  # a torn line is skipped on read
                self._end = self._file.seek(0, os.SEEK_END)
            raise JournalUnavailable(self._error) from None
        self._written += 1
        where = (self._end + len(lead), len(data))
        self._end += len(lead) + len(data)
        return where

    def _xml(self, key: str) -> str | None:
        where = self._entries.get(key)
        if where is None or self._file is None:
            return None
        line = os.pread(self._file.fileno(), where[1], where[0])
        xml = json.loads(line).get("xml")
        return xml if isinstance(xml, str) else None

    def _adopt_orphans(self) -> None:
        for path in sorted(self._dir.glob("spool-*.jsonl")):
            if path == self._path:
                continue
            try:
                with open(path, encoding="utf-8") as orphan:
                    try:
                        fcntl.flock(orphan, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # a live process owns it
                    entries = _read(orphan)
                    for key, xml in entries.items():
                        self.add(key, xml)
                    path.unlink()
            except OSError as exc:
                log.warning("cannot adopt spool file %s: %s", path.name, exc)
            else:
                if entries:
                    log.info("adopted %d pending pushes from %s", len(entries), path.name)


def _read(handle: IO[str]) -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in handle:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a torn last line from a crash mid-write
        key = record.get("key")
        if not isinstance(key, str):
            continue
        if record.get("done"):
            entries.pop(key, None)
        elif isinstance(record.get("xml"), str):
            entries[key] = record["xml"]
    return entries
