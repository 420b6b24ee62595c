"""Build one tiny, randomly initialised model of a real architecture."""

from rankvideo.demo.tiny_models import build
from rankvideo.logs import log_to

with log_to(snakemake.log[0], snakemake.threads):
    build(snakemake.output.model, snakemake.params.spec, snakemake.params.seed)
