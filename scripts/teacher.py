"""Teacher labels (rank1-style reasoning over captions) for one shard of training pairs."""

from rankvideo.logs import log_to
from rankvideo.teacher import label_shard

params = snakemake.params
with log_to(snakemake.log[0], snakemake.threads):
    label_shard(
        candidates=snakemake.input.candidates,
        queries=snakemake.input.queries,
        captions=snakemake.input.captions,
        model=params.model,
        output=snakemake.output.labels,
        shard=int(snakemake.wildcards.shard),
        shards=params.shards,
        settings=params.settings,
        asr=params.asr,
        engine=params.engine,
    )
