"""Build the demo archive: synthetic videos, queries, qrels, first-stage runs."""

from rankvideo.demo.data import DemoSettings, build_archive
from rankvideo.logs import log_to

with log_to(snakemake.log[0]):
    build_archive(DemoSettings(**snakemake.params.settings), snakemake.output.archive)
