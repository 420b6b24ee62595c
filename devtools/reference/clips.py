"""The clips of the reference fixtures (tests/fixtures/reference/clips), made once.

    .venv/bin/python devtools/reference/clips.py tests/fixtures/reference/clips

Each clip picks a frame-group count or an edge case of qwen-vl-utils' sampling:
`one-group` has 3 frames (fewer than the minimum 4: sampled as 2, one temporal
group), `two-groups` 1 s at 8 fps (4 frames at 2 fps), `many-groups` 6 s (12 frames
at 2 fps, 6 groups), `odd-size` 100 x 76 pixels (not a multiple of 32; resized).
The files are committed: the fixtures' pixels depend on the encoder's bytes.
"""

import sys
from pathlib import Path

import av
import numpy as np

CLIPS = {  # name: (width, height, fps, frames)
    "one-group": (64, 64, 8, 3),
    "two-groups": (64, 64, 8, 8),
    "many-groups": (64, 64, 8, 48),
    "odd-size": (100, 76, 25, 50),
}


def frame(width: int, height: int, i: int, n: int) -> np.ndarray:
    """A red disc crossing a grey field from right to left, with a blue bar."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.full((height, width, 3), 128, dtype=np.uint8)
    cx = width * (0.8 - 0.6 * i / max(n - 1, 1))
    disc = (x - cx) ** 2 + (y - height / 2) ** 2 < (min(width, height) / 5) ** 2
    image[disc] = (220, 30, 30)
    image[: height // 8, :] = (30, 30, 200)
    return image


def write(path: Path, width: int, height: int, fps: int, frames: int) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            image = av.VideoFrame.from_ndarray(frame(width, height, i, frames), format="rgb24")
            container.mux(stream.encode(image))
        container.mux(stream.encode())


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    for name, shape in CLIPS.items():
        write(folder / f"{name}.mp4", *shape)
