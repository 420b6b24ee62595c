"""Audit the captions against the reference captions, attribute by attribute."""

from rankvideo.caption_audit import caption_audit
from rankvideo.logs import log_to

with log_to(snakemake.log[0]):
    caption_audit(snakemake.input.captions, snakemake.input.references, snakemake.output.audit)
