"""Stage 2: reranker training from the stage-1 model on the ranking records."""

from rankvideo.launch import run_stage
from rankvideo.logs import log_to

with log_to(snakemake.log[0]):
    run_stage(
        "rankvideo.train_reranker",
        dict(snakemake.params.settings),
        snakemake.params.processes,
        snakemake.threads,
    )
