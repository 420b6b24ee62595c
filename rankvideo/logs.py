"""Logging for workflow steps: everything a step prints goes to its log file."""

from __future__ import annotations

import contextlib
import logging
import sys

from rankvideo.allocator import keep_freed_memory


@contextlib.contextmanager
def log_to(path, threads: int | None = None):
    """Send logging, warnings and progress bars (stderr) to `path`; pin torch threads.

    Snakemake gives each job `threads` cores; torch would otherwise start one
    thread per machine core in every job and oversubscribe the machine. Freed memory
    stays in the process (rankvideo.allocator): model steps reuse it at every batch.
    """
    keep_freed_memory()
    with open(path, "a", buffering=1, encoding="utf-8") as stream:
        old_stderr = sys.stderr
        sys.stderr = stream
        logging.basicConfig(
            stream=stream,
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            force=True,
        )
        logging.captureWarnings(True)
        logging.getLogger("qwen_vl_utils").setLevel(logging.WARNING)  # one line per video otherwise
        if threads:
            import torch

            torch.set_num_threads(threads)
        try:
            yield
        except BaseException:
            logging.getLogger("rankvideo").exception("step failed")
            raise
        finally:
            sys.stderr = old_stderr


def for_command_line() -> None:
    """Logging of a `python -m rankvideo.<step>` run (to stderr), and the allocator setting
    that `log_to` makes for workflow jobs."""
    keep_freed_memory()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
