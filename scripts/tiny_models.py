"""Build one tiny model of a real architecture (or copy the tiny model it starts from)
and pretrain it on the demo's world."""

from rankvideo.demo.pretraining import pretrain
from rankvideo.demo.tiny_models import build, copy_model
from rankvideo.logs import log_to

params = snakemake.params
with log_to(snakemake.log[0], snakemake.threads):
    if "source" in snakemake.input.keys():
        copy_model(snakemake.input.source, snakemake.output.model)
    else:
        build(snakemake.output.model, params.spec, params.seed)
    if params.pretraining:
        pretrain(snakemake.output.model, snakemake.input.world, **params.pretraining)
