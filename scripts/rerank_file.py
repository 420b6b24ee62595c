"""Read a system's file of scores into one retriever's per-pair scores and TREC run."""

from rankvideo.logs import log_to
from rankvideo.score_files import import_scores

with log_to(snakemake.log[0]):
    import_scores(
        snakemake.input.scores,
        snakemake.input.candidates,
        snakemake.input.first_stage,
        snakemake.params.depth,
        snakemake.output.scores,
        snakemake.output.run,
        snakemake.wildcards.system,
        others=list(snakemake.input.others),
    )
