"""Stage 1: perception SFT of the base VLM on caption records."""

from rankvideo.launch import run_stage
from rankvideo.logs import log_to

with log_to(snakemake.log[0]):
    run_stage(
        "rankvideo.train_perception",
        dict(snakemake.params.settings),
        snakemake.params.processes,
        snakemake.threads,
    )
