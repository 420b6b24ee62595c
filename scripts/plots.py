"""Plot nDCG@10 per retriever x system, the per-query changes and the reranker score ECDFs."""

from itertools import product

from rankvideo.logs import log_to
from rankvideo.plots import plot_all

params = snakemake.params
with log_to(snakemake.log[0]):
    plot_all(
        snakemake.input.table,
        snakemake.input.per_query,
        dict(
            zip(product(params.retrievers, params.systems), snakemake.input.reranked, strict=True)
        ),
        snakemake.output.ndcg,
        snakemake.output.per_query_delta,
        snakemake.output.ecdf,
    )
