"""The embedded demo and its development tools, kept out of the library's core.

`rankvideo.demo.data` builds the synthetic collection (`python -m rankvideo.demo.data`),
`rankvideo.demo.tiny_models` the tiny models of the real architectures, with the
Qwen tokenizer of `rankvideo.demo.tokenizer`, and `rankvideo.demo.pretraining` teaches
them to caption and to judge on a world of clips of their own. The core imports none of
them, except the scoring benchmark (`rankvideo.bench`), which draws its clips and random
models here, and the caption audit (`rankvideo.caption_audit`), which takes the demo's
attribute words as its default.
"""
