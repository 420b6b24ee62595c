"""rankvideo: a reasoning reranker for text-to-video retrieval (RANKVIDEO), as a library.

`from rankvideo import VLMReranker` loads the scorer lazily, so the light
modules (formats, evaluation) import without torch.
"""

__version__ = "0.1.0"
__all__ = ["VLMReranker"]


def __getattr__(name):
    if name == "VLMReranker":
        from rankvideo.scoring import VLMReranker

        return VLMReranker
    raise AttributeError(f"module 'rankvideo' has no attribute {name!r}")
