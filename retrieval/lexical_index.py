"""BM25, the lexical index beside FAISS: bm25s with a tokenizer for English and Chinese.

Ads are full of brand names, model numbers and places, which a lexical index matches exactly
and a small bi-encoder often does not. ``adrecall build --lexical`` writes one into the index
directory (:data:`LEXICAL_FILES`); the retriever searches it in ``lexical`` and ``hybrid`` mode.

Tokens: English text is lower-cased and split into runs of letters and digits, with bm25s's
English stop words removed (no stemming). Chinese text is cut with jieba's precise mode; each
piece is lower-cased and kept if it holds a letter, digit or CJK character, so mixed text
("iPhone13 价格") keeps its Latin words. A corpus that mixes the two (an ad catalogue in English
and Chinese) gets the ``"mixed"`` tokenizer: runs of CJK characters are cut by jieba, the rest
is tokenised as English. Scores are bm25s's defaults (Lucene variant, k1 = 1.5, b = 0.75).

Saved as numpy arrays (read with ``allow_pickle=False``) and JSON; the tokenizer settings are
recorded (:meth:`LexicalIndex.settings`) and a load under other settings (another stop-word
list, jieba version or tokenizer rule) is refused, because the query tokens would no longer
match the stored ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

LANGUAGES = ("en", "zh", "mixed", "auto")
TOKENIZER_VERSION = 1
"""Bumped whenever :class:`Tokenizer` would cut a text differently."""
SETTINGS_FILE = "lexical.json"
_BM25S_FILES = {
    "data_name": "lexical.data.npy",
    "indices_name": "lexical.indices.npy",
    "indptr_name": "lexical.indptr.npy",
    "vocab_name": "lexical.vocab.json",
    "params_name": "lexical.params.json",
}
LEXICAL_FILES = (SETTINGS_FILE, *_BM25S_FILES.values())
"""The files a lexical index adds to an index directory."""
_WORD = re.compile(r"[a-z0-9]+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_KEEP = re.compile(r"[0-9a-z\u4e00-\u9fff]")


class LexicalIndexError(ValueError):
    """A lexical index is missing, damaged, or was built with other tokenizer settings."""


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
            from bm25s.stopwords import STOPWORDS_EN

            stopwords = STOPWORDS_EN
        self.stopwords = frozenset(stopwords or ())
        self._jieba: Any = None
        if language != "en":
            import jieba

            jieba.setLogLevel(logging.WARNING)
            self._jieba = jieba

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
        pieces = [t.strip() for t in self._jieba.lcut(text)]
        return [t for t in pieces if _KEEP.search(t)]

    def settings(self) -> dict[str, Any]:
        """What decides how a text is cut: compared at load."""
        words = "\n".join(sorted(self.stopwords)).encode("utf-8")
        return {
            "tokenizer_version": TOKENIZER_VERSION,
            "language": self.language,
            "stopwords": len(self.stopwords),
            "stopwords_sha256": hashlib.sha256(words).hexdigest()[:16],
            "jieba": version("jieba") if self.language != "en" else None,
        }


class LexicalIndex:
    """BM25 over a list of texts; results name corpus positions (0-based).

    ``language``: ``"en"``, ``"zh"``, ``"mixed"`` or ``"auto"`` (chosen from the corpus by
    :func:`detect_language`). ``k1``/``b``: the usual BM25 parameters.
    """

    def __init__(self, model: Any, tokenizer: Tokenizer, n_docs: int,
                 recorded: dict[str, Any] | None = None) -> None:
        self._model = model
        self.tokenizer = tokenizer
        self.language = tokenizer.language
        self.k1, self.b = float(model.k1), float(model.b)
        self.n_docs = n_docs
        self._vocab = set(model.vocab_dict) - {""}
        self.recorded = recorded or self.settings()
        """The settings recorded when it was built (what the index manifest holds)."""

    @classmethod
    def build(cls, texts: Sequence[str], language: str = "auto", k1: float = 1.5,
              b: float = 0.75, progress: bool = False) -> LexicalIndex:
        """Index ``texts`` (position = document number); ``progress`` shows a bar over the
        tokenising, the slow part (jieba)."""
        import bm25s
        from tqdm.auto import tqdm

        if language not in LANGUAGES:
            raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")
        texts = list(texts)
        if not texts:
            raise ValueError("a lexical index needs at least one document")
        tokenizer = Tokenizer(detect_language(texts) if language == "auto" else language)
        model = bm25s.BM25(k1=k1, b=b)
        tokens = [tokenizer(t) for t in tqdm(texts, desc="lexical index", unit="ad",
                                             disable=not progress)]
        model.index(tokens, show_progress=False)
        return cls(model, tokenizer, len(texts))

    def __len__(self) -> int:
        return self.n_docs

    def settings(self) -> dict[str, Any]:
        """The recorded settings: tokenizer (:meth:`Tokenizer.settings`), BM25 variant and
        parameters, the bm25s version and the number of documents."""
        return {**self.tokenizer.settings(), "method": "lucene", "k1": self.k1, "b": self.b,
                "bm25s": version("bm25s"), "n_docs": self.n_docs}

    def describe(self) -> str:
        """One line naming the implementation, versions and settings (for result stamps)."""
        english = "lower-cased [a-z0-9]+ words minus bm25s English stop words"
        jieba = f"jieba {version('jieba')} precise mode"
        tokens = {"zh": jieba, "en": english,
                  "mixed": f"CJK runs by {jieba}, the rest {english}"}[self.language]
        return f"bm25s {version('bm25s')} (lucene, k1={self.k1}, b={self.b}); tokens: {tokens}"

    def save(self, folder: str | Path) -> None:
        """Write :data:`LEXICAL_FILES` into ``folder`` (arrays without pickle, JSON)."""
        folder = Path(folder)
        self._model.save(folder, **_BM25S_FILES, allow_pickle=False, show_progress=False)
        (folder / SETTINGS_FILE).write_text(json.dumps(self.settings(), indent=2) + "\n",
                                            encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> LexicalIndex:
        """Read a lexical index written by :meth:`save`, refusing one whose tokenizer settings
        differ from this installation's."""
        import bm25s

        folder = Path(folder)
        missing = [n for n in LEXICAL_FILES if not (folder / n).is_file()]
        if missing:
            raise LexicalIndexError(f"{folder}: lexical index files {missing} are missing; "
                                    "rebuild with `adrecall build --lexical`")
        stored = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
        if stored.get("language") not in ("en", "zh", "mixed"):
            raise LexicalIndexError(f"{folder / SETTINGS_FILE}: unknown tokenizer language "
                                    f"{stored.get('language')!r}; rebuild with `adrecall build "
                                    "--lexical`")
        tokenizer = Tokenizer(stored["language"])
        current = tokenizer.settings()
        changed = {k: (stored.get(k), v) for k, v in current.items() if stored.get(k) != v}
        if changed:
            detail = ", ".join(f"{k} {old!r} then, {new!r} now" for k, (old, new) in changed.items())
            raise LexicalIndexError(
                f"{folder}: the lexical index was built with other tokenizer settings ({detail}); "
                "queries would be cut differently from the ads: rebuild with "
                "`adrecall build --lexical`")
        model = bm25s.BM25.load(folder, **_BM25S_FILES, allow_pickle=False, mmap=False,
                                show_progress=False)
        return cls(model, tokenizer, int(stored["n_docs"]), recorded=stored)

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
    candidates = np.arange(len(scores)) if keep_zero else np.flatnonzero(scores > 0)
    if len(candidates) > k:
        part = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        threshold = scores[part].min()
        candidates = candidates[scores[candidates] >= threshold]  # keep every tie at the cut
    order = np.lexsort((candidates, -scores[candidates]))[:k]
    return [(int(candidates[i]), float(scores[candidates[i]])) for i in order]
