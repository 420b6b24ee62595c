"""Plot the teacher's p_yes distribution by true label over the training pairs."""

from rankvideo.logs import log_to
from rankvideo.plots import plot_teacher_p_yes

with log_to(snakemake.log[0]):
    plot_teacher_p_yes(snakemake.input.ranking, snakemake.output.plot)
