"""The embedded demo and its development tools, kept out of the library's core.

`rankvideo.demo.data` builds the synthetic collection (`python -m rankvideo.demo.data`),
`rankvideo.demo.tiny_models` the tiny random models of the real architectures, with the
Qwen tokenizer of `rankvideo.demo.tokenizer`. The core imports none of them, except
the scoring benchmark (`rankvideo.bench`), which draws its clips and random models here.
"""
