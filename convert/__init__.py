"""Hugging Face checkpoints (config.json + safetensors + tokenizer) → GGUF.

Installed as ``ember.convert``; the ``ember convert`` command calls :func:`convert`.
"""
