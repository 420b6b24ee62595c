"""Outputs that survive a crash: records go to `<output>.partial` as they come.

A rerun reads the partial file back and only computes what is missing; the
final output is written (in the caller's order) and the partial file removed
once every record is there. A line cut short by a crash is dropped.

The partial file belongs to the fingerprint of what wrote it (model, settings,
inputs), recorded in `<output>.fingerprint.json`: a rerun with another
fingerprint (a retrained model, another template) logs what differs and starts
afresh instead of mixing old records into the new output.

Inputs that each record reads on its own (its video) are stamped one by one in
`<output>.parts.json` instead: a rerun drops only the records of the videos that
changed since, so fixing one broken video keeps every pair scored before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from rankvideo import formats
from rankvideo.fingerprint import Stamp

log = logging.getLogger(__name__)


class ResumableOutput:
    """`parts` ({value of the `part` field: stamp}) are the per-record inputs; a record
    is kept only when its part's stamp is the one recorded when it was written."""

    def __init__(
        self,
        output,
        key: tuple[str, ...],
        required: tuple[str, ...] = (),
        *,
        fingerprint: dict,
        part: str | None = None,
        parts: dict | None = None,
    ):
        self.output = Path(output)
        self.partial = self.output.with_name(self.output.name + ".partial")
        self.stamp = Stamp(self.output.with_name(self.output.name + ".fingerprint.json"))
        self.part_stamp = Stamp(self.output.with_name(self.output.name + ".parts.json"))
        self.key, self.part = key, part
        self.parts = _jsonable(parts or {})
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
        if self.part:
            self._drop_changed_parts()
        log.info("resuming: %d records already in %s", len(self.done), self.partial)

    def _drop_changed_parts(self) -> None:
        """Drop the records whose part (video) changed since they were written, and write
        the partial file again without them, so a later rerun cannot take them back."""
        recorded = self.part_stamp.read() or {}
        changed = sorted(
            {r[self.part] for r in self.done.values()}
            - {p for p, stamp in self.parts.items() if recorded.get(p) == stamp}
        )
        if not changed:
            return
        dropped = set(changed)
        kept = {k: r for k, r in self.done.items() if r[self.part] not in dropped}
        log.warning(
            "%s: %d %s values changed since their records were written (or have no stamp), "
            "e.g. %s: dropping their %d records, the %d others are kept",
            self.partial, len(changed), self.part, changed[:5],
            len(self.done) - len(kept), len(kept),
        )  # fmt: skip
        self.done = kept
        formats.write_jsonl(self.partial, kept.values())

    def key_of(self, record: dict) -> tuple:
        return tuple(record[k] for k in self.key)

    def pending(self, keys: Iterable[tuple]) -> list[tuple]:
        return [k for k in keys if k not in self.done]

    def __enter__(self):
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        if self.part:  # before any record: a record is never on disk without its stamp
            self.part_stamp.write(self.parts)
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
        self.part_stamp.remove()
        return records


def _jsonable(parts: dict) -> dict:
    """`parts` as the stamp file reads it back (tuples become lists), for comparison."""
    return {p: list(s) if isinstance(s, tuple) else s for p, s in parts.items()}
