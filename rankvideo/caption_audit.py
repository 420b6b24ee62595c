"""Do the captions say what the videos show? Attribute accuracy against reference captions.

A caption names an attribute's value when one of the attribute's words appears in it
as a word (any case). Per attribute, a caption is right when it names exactly the
values its reference caption names; a video whose reference names no value of an
attribute is not counted for that attribute. The demo's reference captions are the
generator's true descriptions (`data/captions.jsonl`), its attributes colour, shape and
direction of motion (`rankvideo.demo.data`).

Output: one row per attribute (`attribute`, `accuracy`, `right`, `videos`), then
`all` (every attribute right) and `empty` (the share of empty captions). Videos with
a caption and no reference, or a reference and no caption, are counted in the log.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

import pandas as pd

from rankvideo import formats

log = logging.getLogger(__name__)

COLUMNS = ["attribute", "accuracy", "right", "videos"]


def demo_attributes() -> dict[str, list[str]]:
    from rankvideo.demo.data import COLOURS, MOTIONS, SHAPES

    return {"colour": list(COLOURS), "shape": list(SHAPES), "motion": list(MOTIONS)}


def named(text: str, words) -> frozenset:
    """The attribute values among `words` that `text` names."""
    present = set(re.findall(r"[a-z]+", text.lower()))
    return frozenset(w for w in words if w.lower() in present)


def read_captions(path) -> dict[str, str]:
    captions = {}
    for line, record in formats.read_jsonl(path, ("doc_id", "text")):
        if record["doc_id"] in captions:
            raise formats.FormatError(path, line, f"caption of {record['doc_id']!r} given twice")
        if not isinstance(record["text"], str):
            raise formats.FormatError(path, line, f"text of {record['doc_id']!r} is not a string")
        captions[record["doc_id"]] = record["text"]
    return captions


def audit(captions: dict, references: dict, attributes: dict) -> pd.DataFrame:
    """The accuracy table of `captions` against `references` (doc_id -> text)."""
    both = sorted(set(captions) & set(references))
    if not both:
        raise ValueError("no video has both a caption and a reference caption")
    rows, all_right = [], {d: True for d in both}
    for kind, words in attributes.items():
        judged = right = 0
        for doc_id in both:
            truth = named(references[doc_id], words)
            if not truth:
                continue
            ok = named(captions[doc_id], words) == truth
            judged, right = judged + 1, right + ok
            all_right[doc_id] &= ok
        rows.append([kind, right / judged if judged else float("nan"), right, judged])
    right = sum(all_right.values())
    rows.append(["all", right / len(both), right, len(both)])
    empty = sum(not captions[d].strip() for d in both)
    rows.append(["empty", empty / len(both), empty, len(both)])
    return pd.DataFrame(rows, columns=COLUMNS)


def caption_audit(captions, references, output, attributes: dict | None = None) -> pd.DataFrame:
    """Write the audit of the captions file against the reference captions file."""
    generated, truth = read_captions(captions), read_captions(references)
    for what, missing in (
        ("captions without a reference", set(generated) - set(truth)),
        ("references without a caption", set(truth) - set(generated)),
    ):
        if missing:
            log.info("%d %s (not audited), e.g. %s", len(missing), what, sorted(missing)[:3])
    table = audit(generated, truth, attributes or demo_attributes())
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(output, sep="\t", index=False, float_format="%.4f")
    for row in table.itertuples():
        log.info("%s: %.3f (%d of %d)", row.attribute, row.accuracy, row.right, row.videos)
    return table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--captions", required=True, help="JSON lines {doc_id, text}")
    parser.add_argument("--references", required=True, help="JSON lines {doc_id, text}")
    parser.add_argument("--output", required=True, help="the audit table (TSV)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    caption_audit(args.captions, args.references, args.output)


if __name__ == "__main__":
    main()
