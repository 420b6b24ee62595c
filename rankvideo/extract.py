"""Unpack the data archive safely and hand on validated, normalised files.

Inputs are the release-layout archive (`data/...`) and/or files outside it
(a folder of videos, queries, qrels, first-stage runs, query splits). Output is
one folder of normalised files that every later step reads:

    queries.tsv  qrels.txt  splits/{train,eval}.txt  videos.tsv (doc_id, path)
    first_stage/<retriever>.json  candidates/<retriever>.json (eval top-`depth`)
    train_candidates.json (train top-`train_depth` of one retriever, for the teacher)
    training_data.jsonl (the archive's released training records; empty without)
    reference_captions.jsonl (the archive's data/captions.jsonl; empty without)
"""

from __future__ import annotations

import logging
import posixpath
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from rankvideo import formats

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg"}


class UnsafeArchiveError(ValueError):
    pass


def check_members(archive) -> list[tarfile.TarInfo]:
    """Refuse absolute paths, `..`, devices and links that leave the tree."""
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    for m in members:
        path = PurePosixPath(m.name)
        if path.is_absolute() or ".." in path.parts:
            raise UnsafeArchiveError(f"{archive}: member {m.name!r} escapes the extraction folder")
        if m.issym() or m.islnk():
            # symlinks resolve from their own folder, hard links from the archive root
            base = path.parent if m.issym() else PurePosixPath()
            target = posixpath.normpath(base / m.linkname)
            if posixpath.isabs(m.linkname) or target == ".." or target.startswith("../"):
                raise UnsafeArchiveError(
                    f"{archive}: link {m.name!r} -> {m.linkname!r} points out of the tree"
                )
        if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            raise UnsafeArchiveError(f"{archive}: member {m.name!r} is not a file or folder")
    return members


def unpack(archive, destination) -> Path:
    """Extract `archive` into `destination` (replaced) with tarfile's `data` filter."""
    check_members(archive)
    destination = Path(destination)
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(destination, filter="data")
    return destination


def scan_videos(folder) -> dict[str, str]:
    """{doc_id: path} for every video file under `folder`; the id is the file stem."""
    manifest: dict[str, str] = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
            if path.stem in manifest:
                raise ValueError(
                    f"two videos share the id {path.stem!r}: {manifest[path.stem]}, {path}"
                )
            manifest[path.stem] = str(path)
    if not manifest:
        raise ValueError(f"{folder}: no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
    return manifest


def _source(override, unpacked: Path | None, relative: str, what: str) -> Path:
    if override:
        path = Path(override)
    elif unpacked is not None:
        path = unpacked / relative
    else:
        raise ValueError(
            f"no {what}: set it in the config or give an archive that holds {relative}"
        )
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def extract(
    output_dir,
    retrievers: list[str],
    depth: int,
    archive=None,
    videos=None,
    queries=None,
    qrels=None,
    first_stage_dir=None,
    train_queries=None,
    eval_queries=None,
    train_depth: int = 20,
    train_retriever: str | None = None,
) -> dict:
    """Validate every input and write the normalised data folder; returns counts."""
    out = Path(output_dir)
    unpacked = unpack(archive, out / "archive") / "data" if archive else None
    query_text = formats.read_queries(_source(queries, unpacked, "queries.tsv", "queries"))
    judgements = formats.read_qrels(_source(qrels, unpacked, "qrels.txt", "qrels"))
    manifest = scan_videos(_source(videos, unpacked, "videos", "video folder"))

    def known(ids, path, what):
        unknown = sorted(set(ids) - set(query_text))
        if unknown:
            raise ValueError(
                f"{path}: {len(unknown)} {what} not in the queries file, e.g. {unknown[:5]}"
            )

    known(judgements, "qrels", "query ids")
    splits = {}
    for name, override in (("train", train_queries), ("eval", eval_queries)):
        path = override or (unpacked / "splits" / f"{name}.txt" if unpacked else None)
        if path and Path(path).exists():
            splits[name] = formats.read_ids(path)
            known(splits[name], path, f"{name} query ids")
        elif name == "eval":
            splits[name] = sorted(judgements)  # no split given: evaluate every judged query
            log.info("no eval split given: evaluating all %d judged queries", len(judgements))
        else:
            splits[name] = []
    overlap = set(splits["train"]) & set(splits["eval"])
    if overlap:
        raise ValueError(f"{len(overlap)} queries are in both splits, e.g. {sorted(overlap)[:5]}")

    counts = {
        "queries": len(query_text),
        "videos": len(manifest),
        "eval_queries": len(splits["eval"]),
    }
    runs = {}
    for retriever in retrievers:
        run_path = _source(
            Path(first_stage_dir) / f"ranking_{retriever}.json" if first_stage_dir else None,
            unpacked,
            f"first_stage_results/ranking_{retriever}.json",
            f"first-stage run of {retriever!r}",
        )
        run = runs[retriever] = formats.read_run(run_path)
        known(run, run_path, "query ids")
        missing = sorted({d for docs in run.values() for d in docs} - set(manifest))
        if missing:
            raise ValueError(
                f"{run_path}: {len(missing)} retrieved videos have no file in the video folder, "
                f"e.g. {missing[:5]}"
            )
        eval_run = {q: run[q] for q in splits["eval"] if q in run}
        no_run = len(splits["eval"]) - len(eval_run)
        if no_run:
            log.warning("%s: %d eval queries have no first-stage results", retriever, no_run)
        (out / "first_stage").mkdir(parents=True, exist_ok=True)
        (out / "candidates").mkdir(parents=True, exist_ok=True)
        formats.write_run_json(out / "first_stage" / f"{retriever}.json", run)
        candidates = formats.invert_run(eval_run, depth)
        formats.write_candidates(out / "candidates" / f"{retriever}.json", candidates)
        counts[f"pairs_{retriever}"] = sum(len(q) for q in candidates.values())
        if unpacked and (released := unpacked / f"videos2queriesranking_{retriever}.json").exists():
            formats.read_candidates(released)  # validated; ours follows the configured depth

    # the teacher labels the top `train_depth` candidates of every training query
    train_retriever = train_retriever or retrievers[0]
    if train_retriever not in runs:
        raise ValueError(f"training retriever {train_retriever!r} is not one of {retrievers}")
    train_run = {q: runs[train_retriever][q] for q in splits["train"] if q in runs[train_retriever]}
    train_candidates = formats.invert_run(train_run, train_depth)
    formats.write_candidates(out / "train_candidates.json", train_candidates)
    counts["train_pairs"] = sum(len(q) for q in train_candidates.values())

    released = []
    if unpacked and (unpacked / "training_data.json").exists():
        released = formats.read_training_records(unpacked / "training_data.json")
        homeless = sorted({r["doc_id"] for r in released} - set(manifest))
        if homeless:
            raise ValueError(
                f"{unpacked / 'training_data.json'}: {len(homeless)} videos have no file, "
                f"e.g. {homeless[:5]}"
            )
        # the release's paths are its authors'; ours come from the video folder
        released = [{**r, "videos": [manifest[r["doc_id"]]]} for r in released]
    counts["training_records"] = formats.write_jsonl(out / "training_data.jsonl", released)
    reference = []
    if unpacked and (unpacked / "captions.jsonl").exists():
        reference = [
            r for _, r in formats.read_jsonl(unpacked / "captions.jsonl", ("doc_id", "text"))
        ]
    counts["reference_captions"] = formats.write_jsonl(out / "reference_captions.jsonl", reference)

    formats.write_queries(out / "queries.tsv", query_text)
    formats.write_qrels(out / "qrels.txt", judgements)
    (out / "splits").mkdir(exist_ok=True)
    for name, ids in splits.items():
        formats.write_ids(out / "splits" / f"{name}.txt", ids)
    formats.write_manifest(out / "videos.tsv", manifest)
    log.info("extracted into %s: %s", out, counts)
    return counts
