"""Render the pretraining world of the demo's tiny models (clips no evaluation query names)."""

from rankvideo.demo.data import DemoSettings
from rankvideo.demo.pretraining import write_world
from rankvideo.logs import log_to

with log_to(snakemake.log[0]):
    write_world(DemoSettings(**snakemake.params.settings), snakemake.output.world)
