"""The bi-encoder: texts in, L2-normalised float32 vectors out.

Wraps sentence-transformers so that adrecall controls what matters for an index: the same text
normalisation for ads and queries, a clear error for a bad row, and a count of texts the model
had to truncate (reported, never hidden). Loads the embedded default model, any local
sentence-transformers directory, or a plain Hugging Face BERT directory (mean pooling added).
The transformer itself runs on the chosen back-end (:mod:`adrecall.backends`); tokenising and
the pooling modules stay in sentence-transformers, so every back-end reads texts the same way.
"""

from __future__ import annotations

import copy
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from adrecall.backend_choice import PROBE_TEXTS, choose_backend
from adrecall.model_loading import load_sentence_transformer
from adrecall.model_runner import ModelRunner
from adrecall.models import model_label, resolve_model_dir, weights_sha256
from adrecall.textnorm import check_texts, model_text
from adrecall.wobert import wobert_active
from retrieval.encode_batches import encode_sorted

MIN_PROBE_COSINE = 0.999
"""``auto`` keeps a back-end whose vectors of the probe texts all have at least this cosine to
fp32 (bf16 reaches about 0.99998; an index's load check asks the same of stored vectors)."""


@dataclass(frozen=True)
class EncodeResult:
    """Vectors of one ``encode_batch`` call, how many of its texts were truncated, and how many
    real (unpadded) tokens the model read."""

    vectors: np.ndarray
    truncated: int
    tokens: int = 0


class Encoder:
    """Sentence embedding model used for both ads and queries.

    ``model`` is ``None``/``"default"`` (the embedded all-MiniLM-L6-v2) or a local directory.
    ``normalize_text`` applies :func:`adrecall.textnorm.model_text` before tokenising (the
    normalised text, or the text as written when normalisation would empty it). A model whose
    tokenizer config carries the WoBERT flag tokenises with WoBERT (see :attr:`wobert`).
    ``backend`` (:data:`adrecall.backends.BACKENDS`) runs the transformer: ``auto`` picks the
    fastest one that agrees with fp32 and records why in :attr:`backend_choice`; ``threads``
    sets its thread count.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        normalize_text: bool = True,
        max_length: int | None = None,
        backend: str = "auto",
        threads: int | None = None,
    ) -> None:
        self.model_dir = resolve_model_dir(model)
        self.label = model_label(model)
        self.normalize_text = normalize_text
        self._model = load_sentence_transformer(self.model_dir)
        if max_length is not None:
            if max_length < 8:
                raise ValueError(f"max_length must be at least 8 tokens, got {max_length}")
            self._model.max_seq_length = max_length
        self._tokenizer = self._model.tokenizer
        # A fast tokenizer's truncation and padding settings are state shared by every thread
        # that calls it, and each call rewrites them: counting full lengths on the tokenizer
        # that sentence-transformers encodes with would switch its truncation off mid-encode in
        # another thread. Lengths are counted on a private copy, always with the same settings.
        self._length_tokenizer = copy.deepcopy(self._tokenizer)
        self._vocab = frozenset(self._tokenizer.get_vocab())
        self._threads = threads
        self._runner, self.backend_choice = choose_backend(
            backend, self._make_runner, self._agrees_with_fp32)

    @property
    def backend(self) -> str:
        """The back-end that runs the model (``auto`` resolved)."""
        return self.backend_choice.backend

    def _make_runner(self, backend: str) -> ModelRunner:
        transformer = self._model[0]
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids")
                 if n in self._tokenizer.model_input_names]
        return ModelRunner(transformer.model, backend, weights_sha256=self.weights_sha256,
                           input_names=names, output_names=["last_hidden_state"],
                           threads=self._threads)

    def _agrees_with_fp32(self, runner: ModelRunner) -> tuple[bool, str]:
        probe = self.prepare(list(PROBE_TEXTS))
        fresh = self._embed(self._tokenize(probe), runner, True)
        reference = self._embed(self._tokenize(probe), self._make_runner("torch"), True)
        worst = float(np.min(np.sum(fresh * reference, axis=1)))
        return worst >= MIN_PROBE_COSINE, (
            f"min cosine {worst:.5f} to fp32 on {len(probe)} probe texts")

    @property
    def wobert(self) -> bool:
        """Whether WoBERT pre-tokenisation is on (an index records it: same weights, other tokens)."""
        return wobert_active(self._tokenizer)

    @property
    def dimension(self) -> int:
        """Length of every vector this encoder returns."""
        return int(self._model.get_embedding_dimension())

    @property
    def max_length(self) -> int:
        """Longest input in tokens, special tokens included; longer texts are truncated."""
        return int(self._model.max_seq_length)

    @property
    def weights_sha256(self) -> str:
        """Hash of the model's weight files; an index records it to refuse a different model."""
        return weights_sha256(self.model_dir)

    def prepare(self, texts: str | list[str]) -> list[str]:
        """Check texts (naming any bad row) and apply :func:`adrecall.textnorm.model_text`."""
        return [model_text(t, self.normalize_text) for t in check_texts(texts)]

    def encode_batch(
        self, texts: str | list[str], *, batch_size: int = 128, normalize: bool = True
    ) -> EncodeResult:
        """Embed ``texts`` and count how many exceeded the model's maximum length."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        prepared = self.prepare(texts)
        if not prepared:
            return EncodeResult(np.zeros((0, self.dimension), dtype=np.float32), 0)
        vectors, tokens = encode_sorted(
            prepared, self._tokenize, lambda f: self._embed(f, self._runner, normalize), batch_size
        )
        return EncodeResult(vectors, self._count_truncated(prepared), tokens)

    def _tokenize(self, texts: list[str]) -> dict:
        """Model inputs of a batch, padded to its longest text, truncated to the maximum."""
        return self._model[0].preprocess(texts)

    def _embed(self, features: dict, runner: ModelRunner, normalize: bool) -> np.ndarray:
        """Sentence vectors of one tokenised batch: the transformer on ``runner``, then the
        model's own pooling (and any dense or normalise) modules."""
        features = dict(features)
        features["token_embeddings"] = runner(features)["last_hidden_state"]
        with torch.inference_mode():
            for module in list(self._model)[1:]:
                features = module(features)
        vectors = features["sentence_embedding"].float().numpy()
        if normalize:
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors.astype(np.float32, copy=False)

    def encode(
        self, texts: str | list[str], batch_size: int = 128, normalize: bool = True
    ) -> np.ndarray:
        """Embed ``texts`` as float32 ``(n, dimension)``; warns when texts were truncated."""
        result = self.encode_batch(texts, batch_size=batch_size, normalize=normalize)
        if result.truncated:
            warnings.warn(
                f"{result.truncated} of {len(result.vectors)} texts exceeded {self.max_length} "
                "tokens and were truncated",
                stacklevel=2,
            )
        return result.vectors

    def unreadable_share(self, text: str) -> float:
        """The share of ``text``'s characters (after normalisation, spaces aside) that the
        model's vocabulary lacks, even lower-cased and without accents: they reach the model as
        [UNK]. The default MiniLM knows 244 CJK characters, so most Chinese text scores 0.6–1.
        Hybrid search trusts the dense side less on such a query (:mod:`retrieval.hybrid`)."""
        chars = [c for c in model_text(text, self.normalize_text) if not c.isspace()]
        if not chars:
            return 0.0
        return sum(not self._knows(c) for c in chars) / len(chars)

    def _knows(self, char: str) -> bool:
        lower = char.lower()
        bare = "".join(c for c in unicodedata.normalize("NFD", lower)
                       if unicodedata.category(c) != "Mn")
        return char in self._vocab or lower in self._vocab or bare in self._vocab

    def _count_truncated(self, texts: list[str]) -> int:
        # A WordPiece token covers at least one character, so only texts with more characters
        # than the token budget can overflow: tokenise just those.
        budget = self.max_length - 2
        long_texts = [t for t in texts if len(t) > budget]
        if not long_texts:
            return 0
        ids = self._length_tokenizer(
            long_texts, add_special_tokens=True, truncation=False, verbose=False
        )
        return sum(len(row) > self.max_length for row in ids["input_ids"])
