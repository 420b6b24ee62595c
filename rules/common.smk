# Python helpers of the workflow: constants from the config, input functions, constraints.
import re
from pathlib import Path

RETRIEVERS = config["data"]["retrievers"]
SYSTEMS = config["rerank"]["systems"]
# ablations of the trained reranker: system -> the stage-2 losses it changes
ABLATIONS = {
    "rankvideo_no_distill": {"distill": 0.0},  # without the teacher
    "rankvideo_distill_only": {"listwise": 0.0, "pointwise": 0.0},  # the teacher alone
}
TRAINED_SYSTEMS = ("rankvideo", *ABLATIONS)
BUILT_IN_SYSTEMS = ("base", "caption_reasoner", *TRAINED_SYSTEMS)
# more systems, each a model scored with its own profile or a file of scores
# (config rerank.models)
MORE_SYSTEMS = config["rerank"]["models"]
FILE_SYSTEMS = {name: s["file"] for name, s in MORE_SYSTEMS.items() if "file" in s}
# the systems a model scores (rerank_shard jobs), in the order of rerank.systems
MODEL_SYSTEMS = [s for s in SYSTEMS if s not in FILE_SYSTEMS]
SHARDS = list(range(config["rerank"]["shards"]))
TINY_PREFIX = "tiny-"
DEMO_ARCHIVE = "resources/demo/data.tar.gz"  # built by rule demo_data
# Per-retriever files of the data step, written by `extract` and read downstream.
FIRST_STAGE = "results/data/first_stage/{retriever}.json"
CANDIDATES = "results/data/candidates/{retriever}.json"


def _one_of(names):
    """A wildcard regex of exactly these names; one that matches nothing when none."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    retriever=_one_of(RETRIEVERS),
    system=_one_of(SYSTEMS),
    ablation=_one_of(ABLATIONS),
    shard=r"\d+",
    name=re.escape(TINY_PREFIX) + r"[A-Za-z0-9_.-]+",


def is_tiny(model):
    return model.startswith(TINY_PREFIX)


def check_settings():
    """Settings the schema cannot judge alone, refused before any job runs."""
    from rankvideo.loss_weights import LossWeights
    from rankvideo.models import check_model_path

    LossWeights(**config["stage2"]["losses"])
    for system in set(SYSTEMS) & set(ABLATIONS):
        try:
            LossWeights(**(config["stage2"]["losses"] | ABLATIONS[system]))
        except ValueError as e:
            raise ValueError(f"rerank.systems: {system} cannot train: {e}") from None
    # a retriever named twice would be extracted, reranked and averaged as two
    twice = sorted({r for r in RETRIEVERS if RETRIEVERS.count(r) > 1})
    if twice:
        raise ValueError(f"data.retrievers names {twice} more than once")
    clash = sorted(set(MORE_SYSTEMS) & set(BUILT_IN_SYSTEMS))
    if clash:
        raise ValueError(f"rerank.models: {clash} are the names of built-in systems")
    unknown = [
        s for s in SYSTEMS if s not in BUILT_IN_SYSTEMS and s not in MORE_SYSTEMS
    ]
    if unknown:
        raise ValueError(
            f"rerank.systems: {unknown} are neither built in ({', '.join(BUILT_IN_SYSTEMS)}) "
            "nor defined under rerank.models"
        )
    for name, spec in MORE_SYSTEMS.items():
        check_more_system(name, spec)
    models = [
        *config["models"].values(),
        *(m["model"] for m in MORE_SYSTEMS.values() if "model" in m),
    ]
    for model in models:
        if not is_tiny(model):  # tiny-* models are built by the workflow
            check_model_path(model)


def check_more_system(name, spec):
    """A system of rerank.models is a model or a file of scores, not both."""
    where = f"rerank.models.{name}"
    if ("model" in spec) == ("file" in spec):
        raise ValueError(f"{where}: name either a model or a file of scores")
    if "file" not in spec:
        return
    scoring = [
        k
        for k, default in (("profile", None), ("scores", "exact"), ("video", {}))
        if spec.get(k, default) != default
    ]
    if scoring:
        raise ValueError(
            f"{where}: {', '.join(scoring)} set for a file of scores, which no model reads"
        )
    fields = set(re.findall(r"{([^}]*)}", spec["file"]))
    if fields - {"retriever"}:
        raise ValueError(
            f"{where}.file: {spec['file']!r} may hold only the field {{retriever}}"
        )


check_settings()


def model_path(model):
    """Where from_pretrained finds a model: tiny-* are built under resources/models/."""
    return f"resources/models/{model}" if is_tiny(model) else model


def model_input(model):
    """The model folder as a job input when the workflow builds it, else nothing."""
    return [model_path(model)] if is_tiny(model) else []


def model_gpus(model, processes=1):
    """Real models run on GPUs (one per process); the demo's tiny models on CPU."""
    return 0 if is_tiny(model) else processes


def system_model(system):
    """The model a reranking system scores with: a model name, or the stage-2 folder."""
    if system == "rankvideo":
        return str(rules.train_reranker.output.model)
    if system in ABLATIONS:
        return expand(rules.train_reranker_ablation.output.model, ablation=system)[0]
    if system in MORE_SYSTEMS:
        return MORE_SYSTEMS[system]["model"]
    return {
        "base": config["models"]["vlm"],
        "caption_reasoner": config["models"]["teacher"],
    }[system]


def model_mem_mb(model, processes=1):
    """Host memory (MB) of a model job: 48 GB per process for a real model, which passes
    through host memory on its way to the GPU (8B in bfloat16: about 17 GB); 8 GB for tiny.
    """
    return (8000 if is_tiny(model) else 48000) * processes


def system_base_model(system):
    """The model a system's scoring job is sized by (stage 2 is the VLM's size)."""
    if system in MORE_SYSTEMS:
        return MORE_SYSTEMS[system]["model"]
    return config["models"]["teacher" if system == "caption_reasoner" else "vlm"]


def system_gpus(system):
    """GPUs a system's scoring job asks for."""
    return model_gpus(system_base_model(system))


def system_mem_mb(system):
    """Host memory a system's scoring job asks for."""
    return model_mem_mb(system_base_model(system))


def stage_settings(stage):
    """Trainer settings of a training stage: its config section less the workflow keys."""
    settings = {
        k: v for k, v in config[stage].items() if k not in ("processes", "captions")
    }
    return settings | {"video": video_settings(), "seed": config["seed"]}


def reranker_stage(wildcards):
    """Stage-2 settings of the trained reranker or of one of its ablations, without paths.

    Also a param of its own: Snakemake compares params between runs, except those derived
    from input or output, so a changed loss weight retrains only through this one.
    """
    settings = stage_settings("stage2")
    ablation = getattr(wildcards, "ablation", None)
    if ablation:
        settings["losses"] = settings["losses"] | ABLATIONS[ablation]
    return settings


def reranker_settings(wildcards, input, output):
    """reranker_stage with the paths of the job and the frame cache."""
    settings = reranker_stage(wildcards)
    settings["video"] = settings["video"] | frame_cache(wildcards, input, output)
    return settings | {
        "model": input.model,
        "train_data": input.ranking,
        "template": config["prompt"]["template"],
        "output_dir": output.model,
        "log": output.log,
        "work_dir": str(Path(output.model).parent / "work"),
    }


def engine(step):
    """The engine of a model step (captions, teacher, rerank), with the vllm settings."""
    return {"name": config[step]["engine"], **config["vllm"]}


def teacher_settings():
    """Keyword arguments of rankvideo.teacher.ReasoningTeacher from the config."""
    t = config["teacher"]
    if t["dataset"] not in t["instructions"]:
        raise ValueError(
            f"teacher.dataset {t['dataset']!r} is not a key of teacher.instructions"
        )
    keys = (
        "max_reasoning_tokens",
        "max_answer_tokens",
        "max_caption_tokens",
        "max_asr_tokens",
    )
    keys += ("batch_size", "device", "dtype")
    return dict(
        instruction=t["instructions"][t["dataset"]],
        answer_words=list(t["answer_words"]),
        **{k: t[k] for k in keys},
    )


def scorer(system):
    """How rankvideo.rerank.rerank_shard scores a system's pairs."""
    model = model_path(system_model(system))
    if system == "caption_reasoner":
        return dict(
            kind="caption_reasoner",
            model=model,
            asr=config["data"]["asr"],
            settings=teacher_settings(),
        )
    keys = ("batch_size", "device", "dtype", "shared_prefix")
    settings = {k: config["rerank"][k] for k in keys}
    # the frame cache's folder and bound come through the param frame_cache
    reader = {"backend": config["video"]["backend"]}
    if system in TRAINED_SYSTEMS:
        # scored as trained: profile, answer words and frames come from the model folder
        return dict(kind="vlm", model=model, video=reader, profile=None, **settings)
    if system in MORE_SYSTEMS:
        # scored as its authors score it, unless the system names its own profile or frames
        spec = MORE_SYSTEMS[system]
        video = reader | spec.get("video", {})
        return dict(
            kind="vlm",
            model=model,
            video=video,
            profile=spec.get("profile"),
            **settings,
        )
    return dict(
        kind="vlm",
        model=model,
        video=video_settings(),
        profile=config["prompt"]["template"],
        **settings,
    )


def rerank_inputs(wildcards):
    """The system's model (when built here) and, for caption_reasoner, the captions."""
    if wildcards.system in TRAINED_SYSTEMS:
        return {"model": system_model(wildcards.system)}
    inputs = {"model": model_input(system_model(wildcards.system))}
    if wildcards.system == "caption_reasoner":
        inputs["captions"] = rules.captions_merge.output.merged
    return inputs


def caption_video_settings():
    """The video section, with the captioner's own frame and pixel keys where set."""
    own = {
        k: v
        for k, v in config["captions"].items()
        if k in config["video"] and v is not None
    }
    return video_settings() | own


def training_data_inputs(wildcards):
    reference = {}
    if config["stage1"]["captions"] == "reference":
        reference = {"reference": rules.extract.output.reference_captions}
    if config["training_data"] == "archive":
        return {"released": rules.extract.output.training_data} | reference
    return reference | {
        "labels": rules.teacher_merge.output.merged,
        "captions": rules.captions_merge.output.merged,
        "qrels": rules.extract.output.qrels,
        "queries": rules.extract.output.queries,
        "videos": rules.extract.output.videos,
        "train": rules.extract.output.train,
    }


def tiny_spec(name):
    if name not in config["tiny_models"]:
        raise ValueError(
            f"model {name!r}: no architecture under tiny_models in the config"
        )
    return config["tiny_models"][name]


def tiny_source(name):
    """The tiny model that `name` starts from (its `from`), or None: built here."""
    source = tiny_spec(name).get("from")
    if source is not None and (not is_tiny(source) or "from" in tiny_spec(source)):
        raise ValueError(
            f"tiny_models.{name}.from: {source!r} is not a tiny model built from "
            "an architecture"
        )
    return source


def tiny_pretraining(name):
    """How tiny model `name` learns on the pretraining world (rankvideo.demo.pretraining):
    a qwen3_vl captions as the captions step does or judges as the reranker is asked, a
    qwen3 reasons as the teacher does; None: it stays as built."""
    spec = tiny_spec(name)
    if not spec.get("pretrain"):
        return None
    pretrain = dict(spec["pretrain"])
    architecture = tiny_spec(tiny_source(name) or name)["architecture"]
    default = "captions" if architecture == "qwen3_vl" else "reasoning"
    task = pretrain.pop("task", None) or default
    if (task == "reasoning") != (architecture == "qwen3"):
        raise ValueError(
            f"tiny_models.{name}.pretrain.task: a {architecture} model cannot learn {task!r}"
        )
    if task == "captions":
        arguments = {
            "prompt": config["captions"]["prompt"],
            "video": caption_video_settings(),
        }
    elif task == "judge":
        arguments = {
            "template": config["prompt"]["template"],
            "answer_words": list(config["stage2"]["answer_words"]),
            "video": video_settings(),
        }
    else:
        judge = teacher_settings()
        arguments = {k: judge[k] for k in ("instruction", "answer_words")}
    settings = {"seed": config["seed"], **pretrain}
    return {"task": task, "settings": settings, **arguments}


def tiny_inputs(wildcards):
    """The model it starts from, and the pretraining world when it is pretrained."""
    inputs = {}
    if tiny_source(wildcards.name):
        inputs["source"] = model_path(tiny_source(wildcards.name))
    if tiny_pretraining(wildcards.name) is not None:
        inputs["world"] = rules.pretraining_world.output.world
    return inputs


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
    if data["asr"]:
        files["asr"] = data["asr"]
    return files


# Where decoded frames are kept and how much: they decide no frame (entries are exact),
# so they are kept out of every param that Snakemake compares between runs.
FRAME_CACHE_KEYS = ("cache", "cache_gb")


def video_settings():
    """The frame settings that decide the frames (the video section less the cache)."""
    return {k: v for k, v in config["video"].items() if k not in FRAME_CACHE_KEYS}


def frame_cache(wildcards, input, output):
    """The frame cache's folder and bound, as a param derived from the job's output: such
    params are not compared between runs, so moving or bounding the cache reruns nothing.
    """
    return {k: config["video"][k] for k in FRAME_CACHE_KEYS}


def bench_settings():
    """The bench section (its own video-first template), on the rerank device."""
    return config["bench"] | {
        "vllm": config["vllm"],
        "device": config["rerank"]["device"],
        "dtype": config["rerank"]["dtype"],
    }


def used_roles():
    """The roles of config models that a step of this run uses: the captioner and
    teacher for synthesized records or caption_reasoner, the VLM for base or training.
    A run whose systems are all score files and whose records come from the archive
    uses none (and builds no tiny model)."""
    synthesize = config["training_data"] == "synthesize"
    reads_captions = synthesize or "caption_reasoner" in SYSTEMS
    return [
        role
        for role, used in (
            ("vlm", "base" in SYSTEMS or any(s in TRAINED_SYSTEMS for s in SYSTEMS)),
            ("teacher", reads_captions),
            ("captioner", reads_captions),
        )
        if used
    ]


def provenance_models():
    """Every model the run's systems score or train with: role -> name or folder."""
    models = {
        f"models.{role}": model_path(config["models"][role]) for role in used_roles()
    }
    for system in SYSTEMS:
        if system == "rankvideo":
            models["stage 1"] = str(rules.train_perception.output.model)
            models["stage 2 (rankvideo)"] = str(rules.train_reranker.output.model)
        elif system in ABLATIONS:
            models["stage 1"] = str(rules.train_perception.output.model)
            models[f"stage 2 ({system})"] = system_model(system)
        elif system in MORE_SYSTEMS and system not in FILE_SYSTEMS:
            models[f"system {system}"] = model_path(MORE_SYSTEMS[system]["model"])
    return models


def provenance_inputs(wildcards):
    """The models built here and every data file (`data_<name>`, for the digests)."""
    built = [
        m
        for m in provenance_models().values()
        if m.startswith(("resources/", "results/"))
    ]
    data = {f"data_{key}": path for key, path in extract_inputs(wildcards).items()}
    outputs = rules.extract.output
    for key in ("queries", "qrels", "videos", "train", "eval"):
        data[f"data_results_{key}"] = outputs[key]
    for retriever, run in zip(RETRIEVERS, outputs.first_stage):
        data[f"data_results_first_stage_{retriever}"] = run
    return {"models": built} | data | score_file_inputs()


def score_file(wildcards):
    """The score file of a file system: the retriever's own, or one for every retriever."""
    return FILE_SYSTEMS[wildcards.system].format(retriever=wildcards.retriever)


def other_candidate_maps(wildcards):
    """The other retrievers' candidate maps, when one score file serves every retriever:
    its pairs of those maps are counted apart from pairs of no map."""
    if "{retriever}" in FILE_SYSTEMS[wildcards.system]:
        return []
    return [
        CANDIDATES.format(retriever=r) for r in RETRIEVERS if r != wildcards.retriever
    ]


def score_file_inputs():
    """Every score file of the run, for the provenance digests (`data_scores_<name>`)."""
    files = {}
    for system in SYSTEMS:
        if system in FILE_SYSTEMS:
            for r in RETRIEVERS:
                path = FILE_SYSTEMS[system].format(retriever=r)
                key = (
                    f"data_scores_{system}"
                    if path == FILE_SYSTEMS[system]
                    else f"data_scores_{system}_{r}"
                )
                files[key] = path
    return files


def system_scorer(system):
    """The scorer of a system, with its reading (rerank.models.<system>.scores)."""
    return scorer(system) | {
        "scores": MORE_SYSTEMS.get(system, {}).get("scores", "exact")
    }


def caption_audit_outputs():
    """The caption audit, where the data has reference captions: the demo's archive."""
    return (
        []
        if config["data"]["archive"] != DEMO_ARCHIVE
        else ["results/captions/audit.tsv"]
    )
