"""Choosing a step's engine and interpreter, and the vllm engine's answer arithmetic,
without vLLM (tests/test_vllm_engine.py runs the engine itself)."""

from __future__ import annotations

import importlib.util
import sys
from types import SimpleNamespace

import pytest
import torch

from rankvideo.elsewhere import call, engine_python, here
from rankvideo.pairs import shard_of
from rankvideo.scoring import yes_no_scores
from rankvideo.vllm_engine import MissingAnswerLogprobs, answer_logprobs_of, slot_scores


def test_transformers_steps_run_here():
    assert engine_python(None) is None
    assert engine_python({"name": "transformers", "python": "/elsewhere/python"}) is None


def test_an_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine 'onnx'"):
        engine_python({"name": "onnx"})


def test_a_named_interpreter_must_exist(tmp_path):
    missing = tmp_path / "venv/bin/python"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        engine_python({"name": "vllm", "python": str(missing)})


def test_this_interpreter_named_runs_here():
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(ModuleNotFoundError, match="vllm.python"):
            engine_python({"name": "vllm", "python": sys.executable})
    else:
        assert engine_python({"name": "vllm", "python": sys.executable}) is None


def test_a_call_runs_in_another_process_and_returns_its_value():
    assert call(sys.executable, "rankvideo.pairs:shard_of", {"video_id": "v7", "shards": 5}) == (
        shard_of("v7", 5)
    )


def test_a_failed_call_names_the_function(capfd):
    with pytest.raises(RuntimeError, match="rankvideo.pairs:check_shard failed"):
        call(sys.executable, "rankvideo.pairs:check_shard", {"shard": 4, "shards": 2})
    assert "shard" in capfd.readouterr().err  # the child's own error reaches the log


def test_the_other_environment_runs_the_step_itself():
    arguments = {"output": "o.jsonl", "engine": {"name": "vllm", "python": "/v/bin/python"}}
    assert here(arguments) == {"output": "o.jsonl", "engine": {"name": "vllm", "python": None}}


def served(logprobs: dict | None):
    """What vLLM's generate returns for one request, as far as the scoring reads it."""
    return SimpleNamespace(outputs=[SimpleNamespace(logprobs=None if logprobs is None else [
        {token: SimpleNamespace(logprob=value) for token, value in logprobs.items()}
    ])])  # fmt: skip


def test_a_missing_answer_token_is_an_error_naming_the_query():
    with pytest.raises(MissingAnswerLogprobs, match=r"query 'a red circle'.*\[9\]"):
        answer_logprobs_of(served({4: -1.0, 7: -2.0}), [4, 9, 7], "query 'a red circle'")
    with pytest.raises(MissingAnswerLogprobs, match=r"\[4, 7\]"):
        answer_logprobs_of(served(None), [4, 7], "query 'q'")


def test_scores_from_returned_logprobs_equal_the_transformers_arithmetic():
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(0)) * 3
    yes, no = [3, 17], [5, 30, 41]
    log_probs = torch.log_softmax(logits, dim=-1)
    outputs = [served({t: float(row[t]) for t in yes + no}) for row in log_probs]
    ours = slot_scores(outputs, yes, no, [f"pair {i}" for i in range(4)])
    theirs = yes_no_scores(logits, yes, no)
    for a, b in zip(ours, theirs, strict=True):
        assert a.keys() == b.keys()
        assert all(abs(a[k] - b[k]) < 1e-5 for k in a)
