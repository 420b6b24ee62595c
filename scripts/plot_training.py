"""Plot the loss curves of the two training stages."""

from rankvideo.logs import log_to
from rankvideo.plots import plot_training

with log_to(snakemake.log[0]):
    plot_training(
        {
            "stage 1: perception SFT": snakemake.input.stage1,
            "stage 2: reranker": snakemake.input.stage2,
        },
        snakemake.output.plot,
    )
