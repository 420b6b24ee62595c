"""Score one shard of the evaluation candidates with one system."""

from rankvideo.logs import log_to
from rankvideo.rerank import rerank_shard, with_frame_cache

with log_to(snakemake.log[0], snakemake.threads):
    rerank_shard(
        candidates=snakemake.input.candidates,
        queries=snakemake.input.queries,
        manifest=snakemake.input.videos,
        output=snakemake.output.scores,
        shard=int(snakemake.wildcards.shard),
        shards=snakemake.params.shards,
        scorer=with_frame_cache(snakemake.params.scorer, snakemake.params.frame_cache),
        captions=snakemake.input.get("captions"),
        engine=snakemake.params.engine,
    )
