"""Outputs that survive a crash: records go to `<output>.partial` as they come.

A rerun reads the partial file back and only computes what is missing; the
final output is written (in the caller's order) and the partial file removed
once every record is there. A line cut short by a crash is dropped.

The partial file belongs to the fingerprint of what wrote it (model, settings,
inputs), recorded in `<output>.fingerprint.json`: a rerun with another
fingerprint (a retrained model, another template, rebuilt videos) logs what
differs and starts afresh instead of mixing old records into the new output.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from rankvideo import formats
from rankvideo.fingerprint import Stamp

log = logging.getLogger(__name__)


class ResumableOutput:
    def __init__(
        self, output, key: tuple[str, ...], required: tuple[str, ...] = (), *, fingerprint: dict
    ):
        self.output = Path(output)
        self.partial = self.output.with_name(self.output.name + ".partial")
        self.stamp = Stamp(self.output.with_name(self.output.name + ".fingerprint.json"))
        self.key = key
        self.done: dict[tuple, dict] = {}
        if self.partial.exists() and not self.stamp.matches(fingerprint, self.partial):
            self.partial.unlink()
        if self.partial.exists():
            self._read_partial(required)
        self.stamp.write(fingerprint)
        self._sink = None

    def _read_partial(self, required: tuple[str, ...]) -> None:
        text = self.partial.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            log.warning("%s: dropping the unfinished last line of an interrupted run", self.partial)
            self.partial.write_text(text[: text.rfind("\n") + 1], encoding="utf-8")
        for _, record in formats.read_jsonl(self.partial, (*self.key, *required)):
            self.done[self.key_of(record)] = record
        log.info("resuming: %d records already in %s", len(self.done), self.partial)

    def key_of(self, record: dict) -> tuple:
        return tuple(record[k] for k in self.key)

    def pending(self, keys: Iterable[tuple]) -> list[tuple]:
        return [k for k in keys if k not in self.done]

    def __enter__(self):
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        self._sink = open(self.partial, "a", encoding="utf-8")
        return self

    def __exit__(self, *exc):
        self._sink.close()

    def add(self, records: list[dict]) -> None:
        formats.append_jsonl(self._sink, records)
        for record in records:
            self.done[self.key_of(record)] = record

    def finish(self, keys: Iterable[tuple]) -> list[dict]:
        """Write every record of `keys`, in that order, to the final output."""
        records = [self.done[k] for k in keys]
        formats.write_jsonl(self.output, records)
        self.partial.unlink(missing_ok=True)
        self.stamp.remove()
        return records
