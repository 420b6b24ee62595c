"""Unpack the data archive safely and hand on validated, normalised files.

Inputs are the release-layout archive (`data/...`) and/or files outside it
(a folder of videos, queries, qrels, first-stage runs, query splits). Queries may
be TSV or CSV and qrels TREC or JSON lines (MultiVENT 2.0's, see formats.py), and
videos may sit in subfolders at any depth. Output is one folder of normalised
files that every later step reads:

    queries.tsv  qrels.txt  splits/{train,eval}.txt  videos.tsv (doc_id, path)
    first_stage/<retriever>.json  candidates/<retriever>.json (eval top-`depth`)
    train_candidates.json (train top-`train_depth` of one retriever, for the teacher)
    training_data.jsonl (the archive's released training records; empty without)
    reference_captions.jsonl (the archive's data/captions.jsonl; empty without)
    archive/ (the unpacked archive, where the videos of videos.tsv live)

Everything is read and checked before anything is written, including one
decoded frame of every video that a later step reads, so a bad input stops the
workflow here, before any model runs, and leaves an earlier output as it was.
Without an eval split, the judged queries outside the train split are evaluated.
"""

from __future__ import annotations

import gzip
import logging
import os
import posixpath
import shutil
import tarfile
import zlib
from collections import Counter
from pathlib import Path, PurePosixPath

from rankvideo import formats

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg"}
SHOWN = 20  # broken videos named in the error; the count covers all of them

# what a corrupt, truncated or foreign file raises inside tarfile (FilterError included)
_UNREADABLE = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)


class ArchiveError(ValueError):
    """An archive that cannot be read; the message starts with its path."""


class UnsafeArchiveError(ArchiveError):
    pass


def _unreadable(archive, error: BaseException) -> ArchiveError:
    return ArchiveError(f"{archive}: cannot read the archive ({type(error).__name__}: {error})")


def check_members(archive) -> list[tarfile.TarInfo]:
    """Refuse absolute paths, `..`, devices and links that leave the tree."""
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            # read on to the end: a gzip checksum is checked there, and a corrupt stored
            # block shows nowhere else
            while tar.fileobj.read(1 << 20):
                pass
    except _UNREADABLE as e:
        raise _unreadable(archive, e) from None
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
    """Extract `archive` into `destination` (replaced) with tarfile's `data` filter.

    The archive is extracted beside `destination` and moved into place only when
    whole: a corrupt or truncated one (found only while extracting) leaves no
    partial folder and the earlier `destination` as it was.
    """
    check_members(archive)
    destination = Path(destination)
    staging = destination.with_name(f".{destination.name}.partial")
    _remove(staging)  # left by a killed run
    staging.mkdir(parents=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
    except BaseException as e:
        _remove(staging)
        if isinstance(e, tarfile.FilterError):  # what the data filter refuses
            raise UnsafeArchiveError(f"{archive}: {e}") from None
        if isinstance(e, _UNREADABLE):
            raise _unreadable(archive, e) from None
        raise
    _remove(destination)
    staging.rename(destination)
    return destination


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def scan_videos(folder) -> dict[str, str]:
    """{doc_id: path} for every video file under `folder`; the id is the file stem in NFC.

    Linked folders are followed (bucket folders are often links to other disks), each
    real folder once, so a link back up the tree cannot loop.
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "a file" if folder.exists() else "missing"
        raise NotADirectoryError(f"{folder}: not a folder of videos ({what})")
    manifest: dict[str, str] = {}
    spaced = []
    for path in sorted(_video_files(folder)):
        if formats.nfc(path.stem) in manifest:
            raise ValueError(
                f"two videos share the id {path.stem!r}: {manifest[formats.nfc(path.stem)]}, "
                f"{path} (the id is the file name without its suffix, read in Unicode NFC)"
            )
        if not path.stem or formats.WHITESPACE.search(path.stem):
            spaced.append(str(path))
        manifest[formats.nfc(path.stem)] = str(path)
    if spaced:
        raise ValueError(
            f"{len(spaced)} video file names hold whitespace, which a video id cannot (TREC "
            f"files split their lines on it); rename them: {', '.join(spaced[:SHOWN])}"
        )
    if not manifest:
        raise ValueError(f"{folder}: no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
    return manifest


def _video_files(folder: Path):
    """Video files under `folder`, through linked folders, each real folder visited once."""
    seen = set()
    for root, folders, files in os.walk(folder, followlinks=True):
        stat = os.stat(root)
        if (stat.st_dev, stat.st_ino) in seen:
            folders.clear()  # a link to a folder already scanned: a loop or a second path
            continue
        seen.add((stat.st_dev, stat.st_ino))
        for name in files:
            path = Path(root) / name
            if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
                yield path


JUDGED_FOUND = 0.5  # below this share of judged videos with a file, the ids do not match


SUFFIXED = "a file suffix the video ids do not carry"


def likely_cause(missing, manifest: dict) -> str:
    """Why ids miss the video folder, when some of them match a video once a file suffix
    or their letter case is set aside; '' when none does."""
    folded = {d.casefold(): d for d in manifest}
    causes: dict[str, list[tuple[str, str]]] = {}
    for doc in missing:
        stem, suffix = os.path.splitext(doc)
        if suffix.lower() in VIDEO_SUFFIXES and stem in manifest:
            causes.setdefault(SUFFIXED, []).append((doc, stem))
        elif doc.casefold() in folded:
            causes.setdefault("letter case", []).append((doc, folded[doc.casefold()]))
    return "".join(
        f"; {len(pairs)} of them differ from a video id by {cause} (e.g. {pairs[0][0]!r} "
        f"and the video {pairs[0][1]!r})"
        for cause, pairs in sorted(causes.items(), key=lambda c: -len(c[1]))
    )


def check_judged_found(path, judgements: dict, manifest: dict) -> float:
    """Share of the judged videos that have a file; refused when it is below JUDGED_FOUND,
    because missing videos make every table silently lower (or zero)."""
    judged = sorted({d for docs in judgements.values() for d in docs})
    missing = [d for d in judged if d not in manifest]
    share = 1 - len(missing) / len(judged)
    message = (
        f"{path}: {len(judged) - len(missing)} of {len(judged)} judged videos "
        f"({share:.0%}) have a file in the video folder"
    )
    if share < JUDGED_FOUND:
        raise ValueError(
            f"{message}; the judgements and the video folder name videos differently? "
            f"Judged without a file, e.g. {missing[:5]}{likely_cause(missing, manifest)}"
        )
    if missing:
        log.warning("%s; without a file, e.g. %s", message, missing[:5])
    else:
        log.info(message)
    return share


def _source(override, unpacked: Path | None, relative: str, what: str, key: str) -> Path:
    """The file the config names (`data.<key>`), else the archive's `data/<relative>`."""
    if override:
        path = Path(override)
    elif unpacked is None:
        raise ValueError(f"no {what}: set data.{key} or give an archive that holds {relative}")
    elif not (path := unpacked / relative).exists():
        # the release's archive holds no videos, queries or qrels: they come with the dataset
        raise FileNotFoundError(f"no {what}: the archive holds no data/{relative}; set data.{key}")
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def _known(ids, queries: dict, path, what: str) -> None:
    unknown = sorted(set(ids) - set(queries))
    if unknown:
        raise ValueError(
            f"{path}: {len(unknown)} {what} not in the queries file, e.g. {unknown[:5]}"
        )


def _splits(train_queries, eval_queries, unpacked, queries: dict, judgements: dict) -> dict:
    """{'train': ids, 'eval': ids}; without an eval split, the judged queries outside train."""
    splits, paths = {}, {}
    for name, given in (("train", train_queries), ("eval", eval_queries)):
        if given:
            path = Path(given)
            if not path.exists():
                raise FileNotFoundError(f"{name} query ids not found: {path}")
        else:
            path = unpacked / "splits" / f"{name}.txt" if unpacked else None
        if path and path.exists():
            splits[name], paths[name] = formats.read_ids(path), path
            _known(splits[name], queries, path, f"{name} query ids")
    splits.setdefault("train", [])
    if "eval" not in splits:
        # the training queries are judged too: evaluating them would be training on the test
        train = set(splits["train"])
        splits["eval"] = sorted(q for q in judgements if q not in train)
        log.info(
            "no eval split given: evaluating the %d judged queries outside the %d training "
            "queries (%d judged)",
            len(splits["eval"]),
            len(train),
            len(judgements),
        )
        if not splits["eval"]:
            raise ValueError("no eval split given and every judged query is a training query")
    overlap = sorted(set(splits["train"]) & set(splits["eval"]))
    if overlap:
        where = " and ".join(str(p) for p in paths.values())
        raise ValueError(f"{where}: {len(overlap)} queries are in both splits, e.g. {overlap[:5]}")
    return splits


def _first_stage(
    retriever, first_stage_dir, unpacked, queries: dict, manifest: dict, depth: int
) -> dict:
    path = _source(
        Path(first_stage_dir) / f"ranking_{retriever}.json" if first_stage_dir else None,
        unpacked,
        f"first_stage_results/ranking_{retriever}.json",
        f"first-stage run of {retriever!r}",
        "first_stage_dir",
    )
    run = formats.read_run(path)
    if not run:
        raise formats.FormatError(path, None, "no queries")
    _known(run, queries, path, "query ids")
    missing = sorted({d for docs in run.values() for d in docs} - set(manifest))
    if missing:
        raise ValueError(
            f"{path}: {len(missing)} retrieved videos have no file in the video folder, "
            f"e.g. {missing[:5]}{likely_cause(missing, manifest)}"
        )
    if unpacked and (released := unpacked / f"videos2queriesranking_{retriever}.json").exists():
        # validated; ours follows the configured depth, which may differ from the release's
        per_query = Counter(q for qids in formats.read_candidates(released).values() for q in qids)
        theirs = max(per_query.values(), default=0)
        if theirs != depth:
            log.warning(
                "%s: the archive's candidate map reranks up to %d videos per query; "
                "rerank.depth is %d",
                released.name, theirs, depth,
            )  # fmt: skip
    return run


def _released(unpacked, manifest: dict, wanted: bool) -> list[dict]:
    """The archive's training records, when `wanted` (their paths are the release authors')."""
    path = unpacked / "training_data.json" if unpacked and wanted else None
    if not (path and path.exists()):
        return []
    records = formats.read_training_records(path, with_paths=False)  # ours replace them
    homeless = sorted({r["doc_id"] for r in records} - set(manifest))
    if homeless:
        raise ValueError(f"{path}: {len(homeless)} videos have no file, e.g. {homeless[:5]}")
    return records


def _reference(unpacked) -> list[dict]:
    path = unpacked / "captions.jsonl" if unpacked else None
    if not (path and path.exists()):
        return []
    formats.read_texts(path)  # one text per video
    return [r for _, r in formats.read_jsonl(path, ("doc_id", "text"))]


def check_videos(manifest: dict, doc_ids, backend: str) -> None:
    """Open every video of `doc_ids` and decode a frame; one error names the broken ones."""
    from rankvideo.video import check_readable  # torch: only the steps that decode need it

    paths = [manifest[d] for d in sorted(doc_ids) if d in manifest]
    broken = check_readable(paths, backend)
    if broken:
        shown = "".join(f"\n  {path}: {error}" for path, error in list(broken.items())[:SHOWN])
        first = f"; the first {SHOWN}" if len(broken) > SHOWN else ""
        raise ValueError(
            f"{len(broken)} of {len(paths)} videos that later steps read cannot be decoded "
            f"with {backend}{first}:{shown}"
        )
    log.info("decoded a frame of each of the %d videos that later steps read", len(paths))


def _read_later(candidate_maps, judgements: dict, train: list, released: list) -> set[str]:
    """Videos that the captions, teacher, training and rerank steps open."""
    ids = {v for candidates in candidate_maps for v in candidates}
    ids |= {d for q in train for d, rel in judgements.get(q, {}).items() if rel > 0}
    return ids | {r["doc_id"] for r in released}


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
    judged_positives: bool = True,
    video_backend: str = "decord",
    released: bool = True,
) -> dict:
    """Check every input, then write the normalised data folder; returns counts.

    `video_backend` (decord or torchcodec) is the reader that opens each video
    that later steps read, to find broken files before any model runs.
    `released`: read the archive's training records (for `training_data: archive`);
    without them, evaluation needs neither the records nor their videos.
    `judged_positives`: the teacher also labels the judged positives of the training
    queries that are not among their top `train_depth` (stage 2 trains one group per
    positive: unlabelled positives would leave most groups out of the distillation).
    """
    out = Path(output_dir)
    staging = out.with_name(f".{out.name}.archive") if archive else None
    try:
        unpacked = unpack(archive, staging) / "data" if archive else None
        data = _read(
            unpacked,
            retrievers,
            depth=depth,
            videos=videos,
            queries=queries,
            qrels=qrels,
            first_stage_dir=first_stage_dir,
            train_queries=train_queries,
            eval_queries=eval_queries,
            train_depth=train_depth,
            train_retriever=train_retriever,
            judged_positives=judged_positives,
            released=released,
        )
        check_videos(data["manifest"], data.pop("read_later"), video_backend)
        if staging:
            _remove(out / "archive")
            out.mkdir(parents=True, exist_ok=True)
            staging.rename(out / "archive")
            data["manifest"] = _moved(data["manifest"], staging, out / "archive")
        return _write(out, **data)
    finally:
        if staging:
            _remove(staging)


def _read(unpacked, retrievers, *, depth, videos, queries, qrels, first_stage_dir, train_queries,
          eval_queries, train_depth, train_retriever, judged_positives, released
          ) -> dict:  # fmt: skip
    """Every input read and cross-checked, and the candidates cut; nothing written."""
    qrels_path = _source(qrels, unpacked, "qrels.txt", "qrels", "qrels")
    query_text = formats.read_queries(
        _source(queries, unpacked, "queries.tsv", "queries", "queries")
    )
    judgements = formats.read_qrels(qrels_path)
    manifest = scan_videos(_source(videos, unpacked, "videos", "video folder", "videos"))
    _known(judgements, query_text, qrels_path, "query ids")
    check_judged_found(qrels_path, judgements, manifest)
    splits = _splits(train_queries, eval_queries, unpacked, query_text, judgements)
    runs = {
        r: _first_stage(r, first_stage_dir, unpacked, query_text, manifest, depth)
        for r in retrievers
    }
    candidates = {r: _eval_candidates(r, run, splits["eval"], depth) for r, run in runs.items()}
    # the teacher labels the top `train_depth` candidates of every training query
    train_retriever = train_retriever or retrievers[0]
    if train_retriever not in runs:
        raise ValueError(f"training retriever {train_retriever!r} is not one of {retrievers}")
    train_run = {q: runs[train_retriever][q] for q in splits["train"] if q in runs[train_retriever]}
    train_candidates = formats.invert_run(train_run, train_depth)
    if judged_positives:
        train_candidates = with_judged_positives(
            train_candidates, judgements, splits["train"], manifest
        )
    released = _released(unpacked, manifest, released)
    return {
        "queries": query_text,
        "judgements": judgements,
        "splits": splits,
        "manifest": manifest,
        "runs": runs,
        "candidates": candidates,
        "train_candidates": train_candidates,
        "released": released,
        "reference": _reference(unpacked),
        "read_later": _read_later(
            [*candidates.values(), train_candidates], judgements, splits["train"], released
        ),
    }


def with_judged_positives(candidates: dict, judgements: dict, train_ids, manifest) -> dict:
    """The teacher's candidate map with every judged positive (grade >= 1) of the training
    queries added; positives without a video are left to the judged-share check."""
    merged = {video: list(qids) for video, qids in candidates.items()}
    added = 0
    for qid in train_ids:
        for doc, grade in sorted(judgements.get(qid, {}).items()):
            if grade > 0 and doc in manifest and qid not in merged.setdefault(doc, []):
                merged[doc].append(qid)
                added += 1
    log.info(
        "teacher pairs: %d top-k candidates and %d judged positives outside them",
        sum(map(len, candidates.values())), added,
    )  # fmt: skip
    return dict(sorted(merged.items()))


def _eval_candidates(retriever: str, run: dict, eval_ids: list, depth: int) -> dict:
    eval_run = {q: run[q] for q in eval_ids if q in run}
    if not eval_run:
        raise ValueError(
            f"{retriever}: none of the {len(eval_ids)} eval queries has first-stage results "
            f"(e.g. {eval_ids[:5]}): nothing to rerank"
        )
    if len(eval_run) < len(eval_ids):
        log.warning(
            "%s: %d eval queries have no first-stage results",
            retriever,
            len(eval_ids) - len(eval_run),
        )
    return formats.invert_run(eval_run, depth)


def _moved(manifest: dict, old: Path, new: Path) -> dict:
    """The manifest after the folder `old` became `new`."""
    return {
        d: str(new / Path(p).relative_to(old)) if Path(p).is_relative_to(old) else p
        for d, p in manifest.items()
    }


def _write(
    out: Path, queries, judgements, splits, manifest, runs, candidates, train_candidates,
    released, reference,
) -> dict:  # fmt: skip
    for folder in ("first_stage", "candidates", "splits"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    counts = {"queries": len(queries), "videos": len(manifest), "eval_queries": len(splits["eval"])}
    for retriever, run in runs.items():
        formats.write_run_json(out / "first_stage" / f"{retriever}.json", run)
        formats.write_candidates(out / "candidates" / f"{retriever}.json", candidates[retriever])
        counts[f"pairs_{retriever}"] = sum(map(len, candidates[retriever].values()))
    formats.write_candidates(out / "train_candidates.json", train_candidates)
    counts["train_pairs"] = sum(map(len, train_candidates.values()))
    # the release's paths are its authors'; ours come from the video folder
    released = [{**r, "videos": [manifest[r["doc_id"]]]} for r in released]
    counts["training_records"] = formats.write_jsonl(out / "training_data.jsonl", released)
    counts["reference_captions"] = formats.write_jsonl(out / "reference_captions.jsonl", reference)
    formats.write_queries(out / "queries.tsv", queries)
    formats.write_qrels(out / "qrels.txt", judgements)
    for name, ids in splits.items():
        formats.write_ids(out / "splits" / f"{name}.txt", ids)
    formats.write_manifest(out / "videos.tsv", manifest)
    log.info("extracted into %s: %s", out, counts)
    return counts
