"""Build one tiny model of a real architecture and pretrain it on the demo's world."""

from rankvideo.demo.pretraining import pretrain
from rankvideo.demo.tiny_models import build
from rankvideo.logs import log_to

params = snakemake.params
with log_to(snakemake.log[0], snakemake.threads):
    build(snakemake.output.model, params.spec, params.seed)
    if params.pretraining:
        pretrain(snakemake.output.model, snakemake.input.world, **params.pretraining)
