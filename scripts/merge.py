"""Merge the shards of a sharded step into one JSON-lines file, sorted by its key."""

from rankvideo.logs import log_to
from rankvideo.pairs import merge_records

with log_to(snakemake.log[0]):
    merge_records(snakemake.input.shards, snakemake.output.merged, tuple(snakemake.params.key))
