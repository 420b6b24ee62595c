"""Pretraining of the demo's tiny models on a world of their own.

A real captioner and a real reasoning teacher learned their trade on other data
than the collection they label. The demo's tiny models do the same: the
*pretraining world* is a set of clips rendered like the demo's, from another seed,
of only the attribute combinations that no evaluation query names, with their true
captions. On it

- the tiny Qwen3-VL learns to caption: the captions step's own prompt and video
  input, then the caption ("A red circle moving left.") and the end of turn;
- the tiny Qwen3 learns rank1's format on (query, caption) pairs of the world: the
  teacher's prompt (`rankvideo.reasoner.TEMPLATE`), a reasoning that names each
  attribute the caption shows and whether the query asks for it, `</think>`, and
  an answer whose probability of yes grows with the number of matches (ANSWER_P);
- a copy of the captioner learns to judge (query, clip) pairs of the world as an
  instruction-tuned VLM answers "is this video relevant?": the reranker's own prompt
  profile, and at its answer slot p(yes) = ANSWER_P of the number of matches. This is
  the base VLM that the reranker is trained from, as the paper's is an instruct model.

The loss is a softmax over the tokens of the world's texts and
`sampled_vocabulary` others drawn afresh each step, not over all 151,936: with the full
output layer a captioner step took 0.45-0.8 s on one core, with the sampled one 0.2 s
(the teacher's: 0.15 s), and the drawn
tokens keep every other token's logit down, so greedy decoding over the full
vocabulary writes the trained texts (the caption audit and the teacher audit
check it on the demo's own clips and pairs).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rankvideo import formats
from rankvideo.demo.data import (
    COLOURS,
    MOTIONS,
    SHAPES,
    Clip,
    DemoSettings,
    encode_mp4,
    make_collection,
    render,
)

log = logging.getLogger(__name__)

# p(yes) that the teacher learns by the number of attributes the caption shares with
# the query: two or three matches make a relevant clip (grades 1 and 2)
ANSWER_P = {0: 0.05, 1: 0.15, 2: 0.8, 3: 0.95}
KINDS = ("colour", "shape", "motion")
WORLD_FILE = "world.jsonl"


@dataclass(frozen=True)
class PretrainSettings:
    steps: int = 300
    learning_rate: float = 3e-3
    batch_size: int = 16
    warmup_steps: int = 20
    sampled_vocabulary: int = 2048  # drawn tokens beside the world's own in each softmax
    freeze_embeddings: bool = False  # the token embedding (tied to the output layer) stays
    seed: int = 0


def world_clips(settings: DemoSettings, per_combination: int) -> list[Clip]:
    """Clips of every combination that no evaluation query of the demo names."""
    _, queries, _, eval_ids, _, _ = make_collection(settings)
    held_out = {queries[q] for q in eval_ids}
    combos = [c for c in itertools.product(COLOURS, SHAPES, MOTIONS) if c not in held_out]
    every = (c for c in combos for _ in range(per_combination))
    return [Clip(f"w{i:04d}", *combo) for i, combo in enumerate(every)]


def write_world(settings: DemoSettings, output_dir) -> int:
    """Render the world's clips as mp4 under `output_dir/videos`, list them in world.jsonl."""
    output_dir = Path(output_dir)
    (output_dir / "videos").mkdir(parents=True, exist_ok=True)
    per_combination = settings.pretraining_clips
    clips = world_clips(settings, per_combination)
    lines = []
    for index, clip in enumerate(tqdm(clips, desc="pretraining world", unit="clip")):
        # seed stream 3: the demo's clips use streams 1 and 2 of the same seed
        frames = render(clip, settings, np.random.default_rng([settings.seed, 3, index]))
        video = f"videos/{clip.doc_id}.mp4"
        (output_dir / video).write_bytes(encode_mp4(frames, settings.fps))
        record = {"doc_id": clip.doc_id, "video": video, "caption": clip.caption()}
        lines.append(json.dumps(record | dict(zip(KINDS, clip.attributes, strict=True))))
    (output_dir / WORLD_FILE).write_text("".join(f"{line}\n" for line in lines))
    combinations = len(clips) // per_combination
    log.info("pretraining world: %d clips of %d combinations", len(clips), combinations)
    return len(clips)


def read_world(world_dir) -> list[dict]:
    path = Path(world_dir) / WORLD_FILE
    fields = ("doc_id", "video", "caption", *KINDS)
    return [record for _, record in formats.read_jsonl(path, fields)]


def reasoning(query: tuple, shown: tuple) -> str:
    """The teacher's reasoning: each attribute the caption shows, matched against the query."""
    checks = (
        f"{kind} {value} {'matches' if value == asked else 'differs'}"
        for kind, asked, value in zip(KINDS, query, shown, strict=True)
    )
    return ", ".join(checks).capitalize() + "."


def sampled_logits(hidden, weight, vocabulary, others: int, generator):
    """(logits over the sorted candidate tokens, the candidates): the world's tokens and
    `others` drawn uniformly from the whole output layer."""
    drawn = torch.randint(0, weight.shape[0], (others,), generator=generator)
    candidates = torch.unique(torch.cat([vocabulary, drawn]))
    return hidden @ weight[candidates].T, candidates


def _train(model, batch_loss, settings: PretrainSettings, what: str) -> list[float]:
    """AdamW with linear warmup and cosine decay; returns the loss of every step."""
    from transformers import get_cosine_schedule_with_warmup

    if settings.freeze_embeddings:
        # also 4x faster: AdamW no longer updates the 151,936-row table every step
        model.get_input_embeddings().weight.requires_grad_(False)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=settings.learning_rate, weight_decay=0.0)
    schedule = get_cosine_schedule_with_warmup(optimizer, settings.warmup_steps, settings.steps)
    model.train()
    losses, started = [], time.monotonic()
    for step in (bar := tqdm(range(settings.steps), desc=f"pretraining {what}", unit="step")):
        loss = batch_loss(step)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    log.info(
        "pretrained the %s: %d steps in %.0f s, loss %.3f -> %.3f (mean of the last 20: %.4f)",
        what, settings.steps, time.monotonic() - started, losses[0], losses[-1],
        float(np.mean(losses[-20:])),
    )  # fmt: skip
    return losses


def _save(model, output_dir, settings: PretrainSettings, what: str, losses: list[float]) -> None:
    model.save_pretrained(output_dir)
    record = {"task": what, **asdict(settings), "losses": [round(x, 5) for x in losses]}
    (Path(output_dir) / "pretraining.json").write_text(json.dumps(record, indent=1) + "\n")


def _world_videos(world_dir, records: list[dict], video: dict, processor) -> list:
    from rankvideo.video import for_processor, load_video

    video = for_processor({**video, "cache": None}, processor)
    return [load_video(Path(world_dir) / r["video"], video) for r in records]


def pretrain_captioner(model_dir, world_dir, prompt: str, video: dict, settings: PretrainSettings):
    """Teach the tiny Qwen3-VL in `model_dir` to caption the world's clips, in place."""
    from rankvideo.captioner import caption_prompt
    from rankvideo.models import load_vlm, video_inputs

    model, processor, _ = load_vlm(str(model_dir), "cpu", "float32")
    prompt = caption_prompt(processor, prompt)
    tokenizer = processor.tokenizer
    records = read_world(world_dir)
    videos = _world_videos(world_dir, records, video, processor)
    targets = [tokenizer.encode(r["caption"] + tokenizer.eos_token) for r in records]
    vocabulary = torch.tensor(sorted({t for ids in targets for t in ids}))
    rng = np.random.default_rng(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)

    def batch_loss(step):
        rows = rng.choice(len(records), settings.batch_size, replace=False)
        texts = [prompt + records[i]["caption"] + tokenizer.eos_token for i in rows]
        inputs = video_inputs(processor, texts, [videos[i] for i in rows], "cpu")
        hidden = model.model(**inputs).last_hidden_state
        # left padding: every row ends with its target; position p predicts token p + 1
        mask = torch.zeros_like(inputs["input_ids"], dtype=torch.bool)
        for row, i in enumerate(rows):
            if inputs["input_ids"][row, -len(targets[i]) :].tolist() != targets[i]:
                raise ValueError(f"the caption of {records[i]['doc_id']} does not end its row")
            mask[row, -len(targets[i]) :] = True
        wanted = inputs["input_ids"][mask]
        logits, candidates = sampled_logits(
            hidden[:, :-1][mask[:, 1:]],
            model.lm_head.weight,
            vocabulary,
            settings.sampled_vocabulary,
            generator,
        )
        return torch.nn.functional.cross_entropy(logits, torch.searchsorted(candidates, wanted))

    losses = _train(model, batch_loss, settings, "captioner")
    _save(model, model_dir, settings, "captions", losses)


def judge_pairs(records: list[dict]) -> dict[int, list[tuple[str, int]]]:
    """(query, clip index) pairs of the world's queries and clips, by number of matches."""
    combos = sorted({tuple(r[k] for k in KINDS) for r in records})
    by_matches: dict[int, list[tuple[str, int]]] = {m: [] for m in ANSWER_P}
    for combo in combos:
        query = Clip("", *combo).description()
        for index, r in enumerate(records):
            matches = sum(a == r[k] for a, k in zip(combo, KINDS, strict=True))
            by_matches[matches].append((query, index))
    return by_matches


def pretrain_judge(model_dir, world_dir, template: str, answer_words, video: dict, settings):
    """Teach the tiny Qwen3-VL in `model_dir` to answer the reranker's prompt (`template`)
    on the world's (query, clip) pairs with p(yes) = ANSWER_P[matches], in place."""
    from rankvideo.models import load_vlm, video_inputs
    from rankvideo.prompt import build_prompt, get_profile
    from rankvideo.scoring import answer_ids, delta_from_answer_rows

    model, processor, _ = load_vlm(str(model_dir), "cpu", "float32")
    records = read_world(world_dir)
    videos = _world_videos(world_dir, records, video, processor)
    by_matches = judge_pairs(records)
    mode = get_profile(template).answers
    yes, no = (answer_ids(processor.tokenizer, word, mode) for word in answer_words)
    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)

    def batch_loss(step):
        # as many pairs of each number of matches, as the teacher learns them
        levels = rng.integers(0, len(ANSWER_P), settings.batch_size)
        pairs = [by_matches[m][rng.integers(len(by_matches[m]))] for m in levels]
        texts = [build_prompt(query, template) for query, _ in pairs]
        inputs = video_inputs(processor, texts, [videos[i] for _, i in pairs], "cpu")
        slot = model.model(**inputs).last_hidden_state[:, -1]  # left padding: the last token
        rows = slot @ model.lm_head.weight[yes + no].T
        scores = delta_from_answer_rows(rows, len(yes))
        p = torch.tensor([ANSWER_P[int(m)] for m in levels])
        return torch.nn.functional.binary_cross_entropy_with_logits(scores, p)

    losses = _train(model, batch_loss, settings, "judge")
    _save(model, model_dir, settings, "judge", losses)


def teacher_pairs(records: list[dict]) -> dict[int, list[tuple]]:
    """(query attributes, caption) pairs of the world, by number of matching attributes."""
    captions = {tuple(r[k] for k in KINDS): r["caption"] for r in records}
    by_matches: dict[int, list[tuple]] = {m: [] for m in ANSWER_P}
    for query, shown in itertools.product(captions, repeat=2):
        matches = sum(a == b for a, b in zip(query, shown, strict=True))
        by_matches[matches].append((query, shown, captions[shown]))
    return by_matches


def _one_token(tokenizer, word: str) -> int:
    ids = tokenizer.encode(word, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"answer word {word!r} is {len(ids)} tokens; the teacher learns one")
    return ids[0]


def pretrain_teacher(
    model_dir, world_dir, instruction: str, answer_words, settings: PretrainSettings
):
    """Teach the tiny Qwen3 in `model_dir` rank1's think-then-answer format, in place."""
    from rankvideo.models import load_text_lm
    from rankvideo.reasoner import THINK_CLOSE, render_prompt

    model, tokenizer, _ = load_text_lm(str(model_dir), "cpu", "float32")
    by_matches = teacher_pairs(read_world(world_dir))
    yes, no = (_one_token(tokenizer, word) for word in answer_words)

    def texts(query, shown, caption):
        asked = "a {} {} moving {}".format(*query)
        prompt = render_prompt(instruction, answer_words, asked, caption)
        return prompt, f"{reasoning(query, shown)}\n{THINK_CLOSE}\n"

    every = [texts(*pair) for pairs in by_matches.values() for pair in pairs]
    vocabulary = {t for _, target in every for t in tokenizer.encode(target)}
    vocabulary = torch.tensor(sorted(vocabulary | {yes, no, tokenizer.eos_token_id}))
    rng = np.random.default_rng(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)

    def batch_loss(step):
        # as many pairs of each number of matches: the world has few with three
        levels = rng.integers(0, len(ANSWER_P), settings.batch_size)
        p = torch.tensor([ANSWER_P[int(m)] for m in levels])
        pairs = [by_matches[m][rng.integers(len(by_matches[m]))] for m in levels]
        prompts, targets = zip(*(texts(*pair) for pair in pairs), strict=True)
        # each text ends: reasoning, </think>, an answer drawn with p(yes), end of turn
        answers = [answer_words[int(rng.random() >= q)] for q in p.tolist()]
        ends = zip(prompts, targets, answers, strict=True)
        rows = [f"{prompt}{target}{answer}{tokenizer.eos_token}" for prompt, target, answer in ends]
        inputs = tokenizer(rows, return_tensors="pt", padding=True, add_special_tokens=False)
        ids = inputs["input_ids"]
        mask = torch.zeros_like(ids, dtype=torch.bool)
        for row, (target, answer) in enumerate(zip(targets, answers, strict=True)):
            end = tokenizer.encode(target) + [yes if answer == answer_words[0] else no]
            end.append(tokenizer.eos_token_id)
            if ids[row, -len(end) :].tolist() != end:  # left padding: every row ends so
                raise ValueError(f"the teacher's target does not end its row: {rows[row]!r}")
            mask[row, -len(end) : -2] = True  # the reasoning and </think>
        mask[:, -1] = True  # the end of turn after the answer
        hidden = model.model(**inputs).last_hidden_state
        logits, candidates = sampled_logits(
            torch.cat([hidden[:, :-1][mask[:, 1:]], hidden[:, -3]]),
            model.lm_head.weight,
            vocabulary,
            settings.sampled_vocabulary,
            generator,
        )
        n = int(mask.sum())
        words = torch.nn.functional.cross_entropy(
            logits[:n], torch.searchsorted(candidates, ids[mask])
        )
        # the answer slot after </think>: soft labels, so p(yes) orders 3 > 2 > 1 > 0 matches
        slot = torch.log_softmax(logits[n:], dim=-1)
        at = torch.searchsorted(candidates, torch.tensor([yes, no]))
        answer = -(p * slot[:, at[0]] + (1 - p) * slot[:, at[1]]).mean()
        return words + answer

    losses = _train(model, batch_loss, settings, "teacher")
    _save(model, model_dir, settings, "reasoning", losses)


TASKS = {"captions": pretrain_captioner, "judge": pretrain_judge, "reasoning": pretrain_teacher}


def pretrain(model_dir, world_dir, task: str, settings: dict, **arguments) -> None:
    """Pretrain the tiny model in `model_dir` on one task of TASKS: `captions` (a qwen3_vl;
    `prompt`, `video`), `judge` (a qwen3_vl; `template`, `answer_words`, `video`) or
    `reasoning` (a qwen3; `instruction`, `answer_words`)."""
    if task not in TASKS:
        raise ValueError(f"pretraining task {task!r}: use one of {sorted(TASKS)}")
    TASKS[task](model_dir, world_dir, settings=PretrainSettings(**settings), **arguments)
