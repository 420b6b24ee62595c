"""Benchmark per-pair against shared-prefix scoring: results/bench/scoring.tsv and its plot."""

from pathlib import Path

from rankvideo.bench import BenchSettings, bench
from rankvideo.logs import log_to

with log_to(snakemake.log[0], snakemake.threads):
    bench(
        snakemake.params.model,
        BenchSettings(**snakemake.params.settings),
        snakemake.output.table,
        snakemake.output.plot,
        work=Path(snakemake.output.table).parent / "work",
    )
