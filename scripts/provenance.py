"""Write the run's provenance: resolved config, commit, packages, model and data digests."""

from rankvideo.logs import log_to
from rankvideo.provenance import write_provenance

with log_to(snakemake.log[0]):
    write_provenance(
        snakemake.params.config,
        snakemake.params.models,
        {k.removeprefix("data_"): v for k, v in snakemake.input.items() if k.startswith("data_")},
        snakemake.params.workflow_dir,
        snakemake.output.config.rsplit("/", 1)[0],
    )
