"""Merge a system's shards into one retriever's per-pair scores and TREC run."""

from rankvideo.logs import log_to
from rankvideo.pairs import merge_scores

with log_to(snakemake.log[0]):
    merge_scores(
        snakemake.input.shards,
        snakemake.input.candidates,
        snakemake.input.first_stage,
        snakemake.params.depth,
        snakemake.output.scores,
        snakemake.output.run,
        snakemake.wildcards.system,
    )
