"""What produced a file: a fingerprint of settings, models and inputs, and its stamp.

Work that survives a crash (the `.partial` files of captions, teacher labels and
reranking; the checkpoints of training) is reused only by a run with the same
fingerprint. A stamp file next to the work records the fingerprint; a run whose
fingerprint differs logs which keys differ and starts afresh, so the scores of an
old model or old settings never reach a new table.

Videos are fingerprinted by name, size and modification time (nothing is read):
a rebuilt video gets a new time. A model folder is fingerprinted by its content
too, because a different checkpoint may carry the same sizes and times (an
archive extracted again, a copy that keeps times): its small files (configs,
tokenizer, adapters) are hashed whole, its large weight files at evenly spaced
samples plus their head and tail, and each result is kept for the process by
(path, size, times, inode), so a step that asks again reads nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)


def digest(value) -> str:
    """sha256 of a JSON-able value (keys sorted, so dict order does not matter)."""
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def file_stat(path) -> list | None:
    """[size, modification time in ns] of a file; None when it is missing."""
    stat = Path(path).stat() if Path(path).is_file() else None
    return stat and [stat.st_size, stat.st_mtime_ns]


def file_stats(paths: Iterable) -> str:
    """A digest of the files' names, sizes and modification times; a missing file counts."""
    stats = []
    for path in map(Path, paths):
        stat = path.stat() if path.is_file() else None
        stats.append((str(path), stat and stat.st_size, stat and stat.st_mtime_ns))
    return digest(stats)


def model_files(model: str) -> dict:
    """A model's identity: its folder's files and their content, or a hub id with its
    cached revision (a commit: content-addressed already)."""
    folder = Path(model)
    if folder.is_dir():
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        content = {str(p.relative_to(folder)): content_digest(p) for p in files}
        return {"folder": str(folder), "files": file_stats(files), "content": digest(content)}
    return {"hub_id": model, "revision": _cached_revision(model)}


WHOLE = 64 << 20  # files up to this size are hashed whole
SAMPLES, SAMPLE = 1024, 4096  # evenly spaced blocks of a larger file
END = 1 << 20  # and its first and last bytes (safetensors' header: names, shapes, offsets)
_DIGESTS: dict[tuple, str] = {}


def content_digest(path) -> str:
    """sha256 of a file's bytes; of a large file, of its size, head, tail and SAMPLES blocks.

    A changed weight file differs almost everywhere (training touches every tensor it
    trains), so 1024 samples find it; reading them costs 4 MiB per file, where a
    full read of an 8B model would cost 16 GB in every job that asks.
    """
    stat = os.stat(path)
    # the change time moves on every write and every reset of the modification time
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns,
           stat.st_ino, stat.st_dev)  # fmt: skip
    if key not in _DIGESTS:
        _DIGESTS[key] = _hash(path, stat.st_size)
    return _DIGESTS[key]


def _hash(path, size: int) -> str:
    hasher = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        if size <= WHOLE:
            for block in iter(lambda: f.read(1 << 20), b""):
                hasher.update(block)
            return hasher.hexdigest()
        hasher.update(f.read(END))
        step = (size - 2 * END) // SAMPLES
        for i in range(SAMPLES):
            f.seek(END + i * step)
            hasher.update(f.read(SAMPLE))
        f.seek(size - END)
        hasher.update(f.read(END))
    return hasher.hexdigest()


def _cached_revision(hub_id: str) -> str | None:
    """The commit of the local Hugging Face cache's snapshot of `hub_id`, if there is one."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(hub_id, "config.json")
    except Exception:  # not a valid hub id: from_pretrained reports it
        return None
    return Path(found).parent.name if isinstance(found, str) else None


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict) and value:
        flat = {}
        for key, sub in value.items():
            flat |= _flatten(sub, f"{prefix}{key}.")
        return flat
    return {prefix.rstrip("."): value}


def differences(old: dict, new: dict) -> list[str]:
    """The dotted keys whose values differ between two fingerprints."""
    flat_old, flat_new = _flatten(old), _flatten(new)
    return sorted(k for k in {*flat_old, *flat_new} if flat_old.get(k) != flat_new.get(k))


class Stamp:
    """A JSON file recording the fingerprint of the work next to it."""

    def __init__(self, path):
        self.path = Path(path)

    def read(self) -> dict | None:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # missing or cut short by a crash: no record
            return None

    def matches(self, current: dict, work) -> bool:
        """True when the stamp records `current`; else log what differs (`work` is reused
        only on a match)."""
        current = json.loads(json.dumps(current, default=str))
        old = self.read()
        if old == current:
            return True
        if old is None:
            why = "no record of them"
        else:
            changed = differences(old, current)
            why = ", ".join(changed[:10]) + (
                f" and {len(changed) - 10} more" if changed[10:] else ""
            )
            why += " differ"
        log.warning("%s was made with other settings or inputs (%s): starting afresh", work, why)
        return False

    def write(self, current: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(current, indent=2, default=str), encoding="utf-8")
        temporary.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
