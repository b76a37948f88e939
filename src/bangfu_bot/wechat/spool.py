"""A small on-disk journal of pushes we answered with `success` before their work committed.

WeChat does not retry a push answered with `success`, so such a push must survive a crash
or a database outage on our side: it is journaled (fsync) before the answer leaves, and
replayed until its work has committed. Each process owns one file, locked with flock; a
file whose lock can be taken belongs to a process that died, and is adopted.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


class Spool:
    """Journal of pushes awaiting a committed answer, keyed by dedupe key."""

    def __init__(self, directory: str | Path) -> None:
        self._dir = Path(directory)
        self._entries: dict[str, str] = {}
        self._file: IO[str] | None = None
        self._path: Path | None = None

    def open(self) -> None:
        """Create this process's journal and adopt those of dead processes."""
        self._dir.mkdir(parents=True, exist_ok=True)
        self._path = self._dir / f"spool-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        self._file = open(self._path, "a+", encoding="utf-8")  # noqa: SIM115 - held open
        fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._adopt_orphans()

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

    def pending(self) -> list[tuple[str, str]]:
        """The (dedupe key, push XML) pairs still waiting."""
        return list(self._entries.items())

    def add(self, key: str, xml: str) -> None:
        """Journal a push durably (returns after fsync)."""
        if key in self._entries:
            return
        self._entries[key] = xml
        self._write({"key": key, "xml": xml})

    def resolve(self, key: str) -> None:
        """Mark a push as committed; the journal is truncated once nothing waits."""
        if self._entries.pop(key, None) is None:
            return
        if self._entries:
            self._write({"key": key, "done": True})
        elif self._file is not None:
            self._file.truncate(0)

    def _write(self, record: dict[str, object]) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

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
