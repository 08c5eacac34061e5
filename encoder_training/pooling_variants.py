"""Four sentence vectors per text from one forward pass: CLS, mean, first-last average, own.

* ``cls``: the last layer's ``[CLS]`` token, raw (what "BERT vectors" usually means).
* ``mean``: the last layer's token vectors averaged over the attention mask.
* ``first_last_avg``: the average of the first and the last transformer layer's token vectors
  (``hidden_states[1]`` and ``hidden_states[-1]``; ``hidden_states[0]``, the embedding layer, is
  not used), then averaged over the mask, as in BERT-flow/BERT-whitening.
* ``model``: the model's own sentence pooling, i.e. every sentence-transformers module after the
  transformer (Pooling, Dense, Normalize ...) run on the same token vectors, so it equals
  ``SentenceTransformer.encode``. A plain Hugging Face directory gets mean pooling, as
  :class:`retrieval.encoder.Encoder` does.

Vectors are returned raw (not L2-normalised). Texts get adrecall's text normalisation first
unless it is switched off, exactly as the encoder does for ads and queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adrecall.model_loading import load_sentence_transformer
from adrecall.models import model_label, resolve_model_dir
from adrecall.textnorm import check_texts, model_text

VARIANTS = ("cls", "mean", "first_last_avg", "model")
VARIANT_LABELS = {
    "cls": "raw CLS",
    "mean": "mean pooling",
    "first_last_avg": "first-last average",
    "model": "model's own pooling",
}


class PoolingEmbedder:
    """A loaded model that embeds texts under every pooling variant at once.

    ``model`` is ``None``/``"default"`` (the embedded all-MiniLM-L6-v2) or a local Hugging Face
    or sentence-transformers directory. ``max_length`` defaults to the model's own limit.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        max_length: int | None = None,
        normalize_text: bool = True,
    ) -> None:
        self.model_dir = resolve_model_dir(model)
        self.label = model_label(model)
        self.normalize_text = normalize_text
        self._st = load_sentence_transformer(self.model_dir)
        first = self._st[0]
        if not hasattr(first, "auto_model") or getattr(first, "tokenizer", None) is None:
            raise ValueError(
                f"{self.model_dir}: the first module is a {type(first).__name__}, not a text "
                "Transformer with a tokenizer; pooling variants need a BERT-like model"
            )
        self._transformer = first.auto_model
        self._tokenizer = first.tokenizer
        self._rest = list(self._st)[1:]
        self._transformer.eval()
        limit = max_length or self._st.max_seq_length or 512
        if limit < 8:
            raise ValueError(f"max_length must be at least 8 tokens, got {limit}")
        self.max_length = int(limit)

    @property
    def dimension(self) -> int:
        """Hidden size of the transformer (the CLS/mean vectors' length)."""
        return int(self._transformer.config.hidden_size)

    def prepare(self, texts: Sequence[str]) -> list[str]:
        """Check texts (naming a bad row) and apply :func:`adrecall.textnorm.model_text`."""
        return [model_text(t, self.normalize_text) for t in check_texts(list(texts))]

    def embed(
        self,
        texts: Sequence[str],
        variants: Sequence[str] = VARIANTS,
        *,
        batch_size: int = 64,
        bf16: bool = False,
        progress: bool = False,
    ) -> dict[str, np.ndarray]:
        """``{variant: float32 (n, d)}`` for the requested variants, rows in input order."""
        import torch
        from tqdm.auto import tqdm

        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            raise ValueError(f"unknown pooling variant(s) {unknown}; choose from {list(VARIANTS)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        prepared = self.prepare(texts)
        order = np.argsort([-len(t) for t in prepared], kind="stable")  # similar lengths batch well
        parts: dict[str, list[np.ndarray]] = {v: [] for v in variants}
        starts = range(0, len(prepared), batch_size)
        for start in tqdm(starts, desc="embedding", unit="batch", disable=not progress):
            batch = [prepared[i] for i in order[start : start + batch_size]]
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                pooled = self._pool_batch(batch, variants)
            for v in variants:
                parts[v].append(pooled[v])
        inverse = np.empty(len(order), dtype=np.int64)
        inverse[order] = np.arange(len(order))
        return {
            v: np.ascontiguousarray(np.concatenate(parts[v])[inverse], dtype=np.float32)
            if parts[v]
            else np.zeros((0, self.dimension), dtype=np.float32)
            for v in variants
        }

    def _pool_batch(self, batch: list[str], variants: Sequence[str]) -> dict[str, np.ndarray]:
        import torch

        enc = self._tokenizer(
            batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        want_layers = "first_last_avg" in variants
        out = self._transformer(**enc, output_hidden_states=want_layers, return_dict=True)
        last = out.last_hidden_state.float()
        mask = enc["attention_mask"].unsqueeze(-1).to(last.dtype)
        result: dict[str, Any] = {}
        if "cls" in variants:
            result["cls"] = last[:, 0]
        if "mean" in variants:
            result["mean"] = _masked_mean(last, mask)
        if want_layers:
            layers = out.hidden_states
            first = layers[1] if len(layers) > 1 else layers[0]
            result["first_last_avg"] = _masked_mean((first.float() + layers[-1].float()) / 2, mask)
        if "model" in variants:
            features: dict[str, Any] = {
                "token_embeddings": out.last_hidden_state,
                "attention_mask": enc["attention_mask"],
                "input_ids": enc["input_ids"],
            }
            for module in self._rest:
                features = module(features)
            result["model"] = features["sentence_embedding"].float()
        return {k: torch.as_tensor(v).float().cpu().numpy() for k, v in result.items()}


def _masked_mean(tokens: Any, mask: Any) -> Any:
    return (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
