"""BM25, the lexical peer in every benchmark table: bm25s with a tokenizer for English and Chinese.

Tokens: English text is lower-cased and split into runs of letters and digits, with bm25s's
English stop words removed (no stemming). Chinese text is cut with jieba's precise mode; each
piece is lower-cased and kept if it holds a letter, digit or CJK character, so mixed text
("iPhone13 价格") keeps its Latin words. A corpus that mixes the two (an ad catalogue in English
and Chinese) gets the ``"mixed"`` tokenizer: runs of CJK characters are cut by jieba, the rest is
tokenised as English. Scores are bm25s's defaults (Lucene variant, k1 = 1.5,
b = 0.75).

Needs the ``bench`` extra: ``pip install 'adrecall[bench]'`` (bm25s, jieba).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np

LANGUAGES = ("en", "zh", "mixed", "auto")
_WORD = re.compile(r"[a-z0-9]+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_KEEP = re.compile(r"[0-9a-z\u4e00-\u9fff]")


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"BM25 needs the package {module!r}: pip install 'adrecall[bench]' "
            "(or pip install bm25s jieba)"
        ) from exc


def detect_language(texts: Sequence[str]) -> str:
    """From the share of CJK among the non-space characters of the first 2,000 texts:
    ``"zh"`` from 30%, ``"en"`` under 1%, ``"mixed"`` between (a Chinese word is one or two
    characters, an English one about six, so a half-Chinese catalogue sits near 7%)."""
    sample = "".join(texts[:2000])
    chars = sum(1 for c in sample if not c.isspace())
    share = len(_CJK.findall(sample)) / chars if chars else 0.0
    return "zh" if share >= 0.3 else "en" if share < 0.01 else "mixed"


class Tokenizer:
    """Text → list of tokens for one language (``"en"``, ``"zh"`` or ``"mixed"``)."""

    def __init__(self, language: str, stopwords: Sequence[str] | None = None) -> None:
        if language not in ("en", "zh", "mixed"):
            raise ValueError(f"tokenizer language must be 'en', 'zh' or 'mixed', got {language!r}")
        self.language = language
        if stopwords is None and language != "zh":
            stopwords = _require("bm25s.stopwords").STOPWORDS_EN
        self.stopwords = frozenset(stopwords or ())
        self._jieba = None
        if language != "en":
            self._jieba = _require("jieba")
            self._jieba.setLogLevel(logging.WARNING)

    def __call__(self, text: str) -> list[str]:
        text = text.lower()
        if self.language == "en":
            tokens = _WORD.findall(text)
        elif self.language == "zh":
            tokens = self._jieba_tokens(text)
        else:
            tokens = []
            start = 0
            for run in _CJK_RUN.finditer(text):
                tokens += _WORD.findall(text[start:run.start()]) + self._jieba_tokens(run.group())
                start = run.end()
            tokens += _WORD.findall(text[start:])
        return [t for t in tokens if t not in self.stopwords]

    def _jieba_tokens(self, text: str) -> list[str]:
        assert self._jieba is not None
        pieces = [t.strip() for t in self._jieba.lcut(text)]
        return [t for t in pieces if _KEEP.search(t)]


class BM25Index:
    """BM25 over a list of texts; results name corpus positions (0-based).

    ``language``: ``"en"``, ``"zh"``, ``"mixed"`` or ``"auto"`` (chosen from the corpus by
    ``detect_language``). ``k1``/``b``: the usual BM25 parameters.
    """

    def __init__(
        self, corpus_texts: Sequence[str], language: str = "auto", k1: float = 1.5, b: float = 0.75
    ) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")
        corpus_texts = list(corpus_texts)
        if not corpus_texts:
            raise ValueError("BM25Index needs at least one document")
        bm25s = _require("bm25s")
        self.language = detect_language(corpus_texts) if language == "auto" else language
        self.tokenizer = Tokenizer(self.language)
        self.k1, self.b = k1, b
        self.n_docs = len(corpus_texts)
        self._model = bm25s.BM25(k1=k1, b=b)
        self._model.index([self.tokenizer(t) for t in corpus_texts], show_progress=False)
        self._vocab = set(self._model.vocab_dict) - {""}

    def __len__(self) -> int:
        return self.n_docs

    def describe(self) -> str:
        """One line naming the implementation, versions and settings (for result stamps)."""
        from importlib.metadata import version

        english = "lower-cased [a-z0-9]+ words minus bm25s English stop words"
        tokens = {
            "zh": f"jieba {version('jieba')} precise mode",
            "en": english,
            "mixed": f"CJK runs by jieba {version('jieba')} precise mode, the rest {english}",
        }[self.language]
        return f"bm25s {version('bm25s')} (lucene, k1={self.k1}, b={self.b}); tokens: {tokens}"

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of ``query`` for every doc, shape ``(n_docs,)``, float32; 0 = no match."""
        tokens = [t for t in self.tokenizer(query) if t in self._vocab]
        if not tokens:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self._model.get_scores(tokens), dtype=np.float32)

    def search(self, queries: Sequence[str], k: int) -> list[list[tuple[int, float]]]:
        """Top ``k`` ``(position, score)`` per query, best first; ties by position ascending.

        Docs that share no term with the query (score 0) are left out, so a list may be
        shorter than ``k``.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        return [top_k(self.scores(q), k) for q in queries]


def top_k(scores: np.ndarray, k: int, keep_zero: bool = False) -> list[tuple[int, float]]:
    """The ``k`` best ``(position, score)`` of a score vector, best first, ties by position."""
    if not keep_zero:
        candidates = np.flatnonzero(scores > 0)
    else:
        candidates = np.arange(len(scores))
    if len(candidates) > k:
        part = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        threshold = scores[part].min()
        candidates = candidates[scores[candidates] >= threshold]  # keep every tie at the cut
    order = np.lexsort((candidates, -scores[candidates]))[:k]
    return [(int(candidates[i]), float(scores[candidates[i]])) for i in order]
