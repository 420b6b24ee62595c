"""Score one shard of the evaluation candidates with one system's model."""

from rankvideo.logs import log_to
from rankvideo.rerank import rerank_shard

settings = snakemake.params.rerank
with log_to(snakemake.log[0], snakemake.threads):
    rerank_shard(
        candidates=snakemake.input.candidates,
        queries=snakemake.input.queries,
        manifest=snakemake.input.videos,
        model=snakemake.params.model,
        output=snakemake.output.scores,
        shard=int(snakemake.wildcards.shard),
        shards=snakemake.params.shards,
        video=snakemake.params.video,
        template=snakemake.params.template,
        batch_size=settings["batch_size"],
        device=settings["device"],
        dtype=settings["dtype"],
    )
