"""Evaluate the first stage and every reranking system with pytrec_eval."""

from itertools import product

from rankvideo.evaluate import evaluate, write_tables
from rankvideo.logs import log_to

params = snakemake.params
with log_to(snakemake.log[0]):
    summary, per_query = evaluate(
        snakemake.input.qrels,
        dict(zip(params.retrievers, snakemake.input.first_stage, strict=True)),
        dict(
            zip(product(params.retrievers, params.systems), snakemake.input.reranked, strict=True)
        ),
        depth=params.depth,
        score_field=params.score_field,
        eval_queries=snakemake.input.eval_queries,
    )
    write_tables(summary, per_query, snakemake.output.table, snakemake.output.per_query)
