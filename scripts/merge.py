"""Merge the shards of a sharded step into one JSON-lines file, sorted by its key."""

from rankvideo.formats import merge_jsonl
from rankvideo.logs import log_to

with log_to(snakemake.log[0]):
    merge_jsonl(snakemake.input.shards, snakemake.output.merged, tuple(snakemake.params.key))
