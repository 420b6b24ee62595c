"""Audit the teacher's labels against the true labels of the training pairs."""

from rankvideo.logs import log_to
from rankvideo.teacher_audit import run

with log_to(snakemake.log[0]):
    run(
        snakemake.input.ranking,
        snakemake.input.labels or None,  # none when the records are the archive's
        snakemake.output.audit,
        snakemake.output.calibration,
        snakemake.output.plot,
    )
