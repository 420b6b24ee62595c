"""Unpack the data archive safely and write the validated, normalised data files."""

from rankvideo.extract import extract
from rankvideo.logs import log_to

data = snakemake.params.data
with log_to(snakemake.log[0]):
    extract(
        snakemake.params.folder,
        retrievers=data["retrievers"],
        depth=snakemake.params.depth,
        archive=data["archive"],
        videos=data["videos"],
        queries=data["queries"],
        qrels=data["qrels"],
        first_stage_dir=data["first_stage_dir"],
        train_queries=data["train_queries"],
        eval_queries=data["eval_queries"],
        train_depth=snakemake.params.train_depth,
        train_retriever=snakemake.params.train_retriever,
        judged_positives=snakemake.params.judged_positives,
        video_backend=snakemake.params.video_backend,
        released=snakemake.params.released,
    )
