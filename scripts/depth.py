"""nDCG and scoring cost at every rerank depth up to the scored one, from the same scores."""

from itertools import product

from rankvideo.depth import by_system, depth_report
from rankvideo.logs import log_to

params = snakemake.params
with log_to(snakemake.log[0]):
    depth_report(
        snakemake.input.qrels,
        dict(zip(params.retrievers, snakemake.input.first_stage, strict=True)),
        dict(
            zip(product(params.retrievers, params.systems), snakemake.input.reranked, strict=True)
        ),
        params.depth,
        snakemake.output.table,
        snakemake.output.plot,
        benchmarks=by_system(list(snakemake.input.benchmarks), params.scored_systems),
        score_field=params.score_field,
        eval_queries=snakemake.input.eval_queries,
    )
