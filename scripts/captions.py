"""Caption one shard of the videos that training and evaluation need."""

from rankvideo.captions import caption_shard
from rankvideo.logs import log_to

params = snakemake.params
with log_to(snakemake.log[0], snakemake.threads):
    caption_shard(
        candidates=[*snakemake.input.candidates, snakemake.input.train_candidates],
        qrels=snakemake.input.qrels,
        train_ids=snakemake.input.train,
        manifest=snakemake.input.videos,
        model=params.model,
        output=snakemake.output.captions,
        shard=int(snakemake.wildcards.shard),
        shards=params.shards,
        video=params.video | params.frame_cache,
        settings=params.settings,
        engine=params.engine,
    )
