"""Join labels, captions, qrels and videos into the stage-1 and stage-2 training records."""

from rankvideo.logs import log_to
from rankvideo.training_data import build_from_config

with log_to(snakemake.log[0]):
    build_from_config(
        mode=snakemake.params.mode,
        inputs=dict(snakemake.input),
        ranking_out=snakemake.output.ranking,
        captions_out=snakemake.output.captions,
        counts_out=snakemake.output.counts,
        stage1_captions=snakemake.params.stage1_captions,
    )
