"""Stage 1: perception SFT of the base VLM on caption records."""

from rankvideo.logs import log_to
from rankvideo.training import run_stage

with log_to(snakemake.log[0]):
    run_stage(
        "rankvideo.train_perception", dict(snakemake.params.settings), snakemake.params.processes
    )
