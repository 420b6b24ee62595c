"""Paired significance tests of every system against its baselines, and the paper table."""

from rankvideo.logs import log_to
from rankvideo.significance import run

params = snakemake.params
with log_to(snakemake.log[0]):
    run(
        snakemake.input.per_query,
        snakemake.output.tests,
        snakemake.output.table,
        metric=params.metric,
        alpha=params.alpha,
        resamples=params.resamples,
        seed=params.seed,
        summary=snakemake.input.summary,
        reranked=snakemake.input.reranked,
    )
