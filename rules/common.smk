# Python helpers of the workflow: constants from the config, input functions, constraints.
import re

RETRIEVERS = config["data"]["retrievers"]
SYSTEMS = config["rerank"]["systems"]
SHARDS = list(range(config["rerank"]["shards"]))
TINY_PREFIX = "tiny-"
# Per-retriever files of the data step, written by `extract` and read downstream.
FIRST_STAGE = "results/data/first_stage/{retriever}.json"
CANDIDATES = "results/data/candidates/{retriever}.json"


def _one_of(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    retriever=_one_of(RETRIEVERS),
    system=_one_of(SYSTEMS),
    shard=r"\d+",
    name=re.escape(TINY_PREFIX) + r"[A-Za-z0-9_.-]+",


def is_tiny(model):
    return model.startswith(TINY_PREFIX)


def model_path(model):
    """Where from_pretrained finds a model: tiny-* are built under resources/models/."""
    return f"resources/models/{model}" if is_tiny(model) else model


def model_input(model):
    """The model folder as a job input when the workflow builds it, else nothing."""
    return [model_path(model)] if is_tiny(model) else []


def model_gpus(model):
    """Real models run on one GPU; the demo's tiny models on CPU."""
    return 0 if is_tiny(model) else 1


def system_model(system):
    """The model that a reranking system scores with."""
    return {"base": config["models"]["vlm"]}[system]


def tiny_spec(name):
    if name not in config["tiny_models"]:
        raise ValueError(
            f"model {name!r}: no architecture under tiny_models in the config"
        )
    return config["tiny_models"][name]


def extract_inputs(wildcards):
    """The archive and every external file that the config names."""
    data = config["data"]
    keys = ("archive", "queries", "qrels", "train_queries", "eval_queries")
    files = {key: data[key] for key in keys if data[key]}
    files |= {
        f"first_stage_{r}": f"{data['first_stage_dir']}/ranking_{r}.json"
        for r in RETRIEVERS
        if data["first_stage_dir"]
    }
    return files


def video_settings():
    return dict(config["video"])
