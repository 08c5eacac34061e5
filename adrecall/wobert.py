"""WoBERT pre-tokenisation: jieba first; words in the vocabulary stay whole; the rest goes to
the normal tokenizer; the results are concatenated in order (Su Jianlin's WoBERT, 2020).

Only runs of CJK characters go through jieba (``HMM=False``, as WoBERT does), so text without
Chinese tokenises exactly as before. A jieba word that is a multi-character token of the
vocabulary (added by ``adrecall extend-vocab --words N``) becomes one token; any other CJK
character becomes its own token, as BERT's Chinese tokenisation does.

How it is switched on
---------------------
The saved tokenizer config carries ``"adrecall_wobert": true`` (``extend-vocab --words N``
sets it; :func:`adrecall.model_loading.set_wobert_flag` changes it in a saved model). The
tokenizer files themselves stay standard, so a loader that does not know the flag still works:
it reads Chinese one character at a time.
Every adrecall loader honours it: :mod:`adrecall.model_loading` calls
:func:`maybe_enable_wobert` on each tokenizer and sentence-transformers model it loads, so
retrieval, BertSim, encoder training and domain adaptation all tokenise the same way. Enabling installs a jieba pre-tokeniser inside the fast tokenizer itself, so
``tokenizer(...)``, ``tokenize``, batch calls and sentence-transformers' ``encode`` all use
it; saving still writes the standard files plus the flag.

:func:`wobert_tokenize` is the plain-Python reference of the same rule.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

WOBERT_FLAG = "adrecall_wobert"
"""Key in ``tokenizer_config.json`` that switches WoBERT pre-tokenisation on."""

_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def is_cjk_char(char: str) -> bool:
    """Whether ``char`` is a CJK ideograph in the sense of BERT's Chinese tokenisation."""
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


def is_cjk_word(token: str) -> bool:
    """Whether ``token`` is non-empty and made only of CJK ideographs."""
    return bool(token) and all(is_cjk_char(c) for c in token)


def jieba_module() -> Any:
    """The jieba module (imported lazily, its start-up log silenced)."""
    try:
        import jieba
    except ImportError as exc:
        raise ImportError(
            "Chinese word segmentation needs jieba, a dependency of adrecall: pip install jieba"
        ) from exc
    jieba.setLogLevel(60)
    return jieba


def cut_words(text: str) -> list[str]:
    """jieba's segmentation of ``text`` (``HMM=False``), pieces in order, covering the text."""
    return list(jieba_module().cut(text, HMM=False))


def wobert_spans(text: str, words: Container[str]) -> Iterator[tuple[int, int, bool]]:
    """Split ``text`` into ``(start, end, whole)`` spans that cover it in order.

    CJK runs are cut by jieba: a word found in ``words`` is one span with ``whole=True``;
    other CJK characters are one span each. Text between CJK runs is one span
    (``whole=False``) for the normal tokenizer.
    """
    start = 0
    n = len(text)
    while start < n:
        end = start
        cjk = is_cjk_char(text[start])
        while end < n and is_cjk_char(text[end]) == cjk:
            end += 1
        if not cjk:
            yield start, end, False
        else:
            pos = start
            for word in cut_words(text[start:end]):
                if len(word) > 1 and word in words:
                    yield pos, pos + len(word), True
                else:
                    for i in range(len(word)):
                        yield pos + i, pos + i + 1, False
                pos += len(word)
        start = end


def cjk_vocab_words(tokenizer: Any) -> frozenset[str]:
    """Multi-character CJK tokens of the tokenizer's vocabulary (the WoBERT words)."""
    return frozenset(t for t in tokenizer.get_vocab() if len(t) > 1 and is_cjk_word(t))


def wobert_tokenize(tokenizer: Any, text: str) -> list[str]:
    """Reference WoBERT tokenisation of one text (no special tokens).

    The text is normalised as the tokenizer does (lower-casing, accents), jieba cuts its CJK
    runs, vocabulary words stay whole and every other piece goes to ``tokenizer.tokenize``.
    """
    words = cjk_vocab_words(tokenizer)
    normalized = _plain_normalizer(tokenizer).normalize_str(text)
    tokens: list[str] = []
    for start, end, whole in wobert_spans(normalized, words):
        piece = normalized[start:end]
        tokens.extend([piece] if whole else tokenizer.tokenize(piece))
    return tokens


class _WoBertPreTokenizer:
    """Custom ``tokenizers`` pre-tokeniser: splits each pre-token into WoBERT spans."""

    def __init__(self, words: frozenset[str]) -> None:
        self.words = words

    def _split(self, _index: int, normalized: Any) -> list[Any]:
        text = str(normalized)
        return [normalized[a:b] for a, b, _ in wobert_spans(text, self.words)]

    def pre_tokenize(self, pretok: Any) -> None:
        pretok.split(self._split)


def wobert_active(tokenizer: Any) -> bool:
    """Whether WoBERT pre-tokenisation is installed in this tokenizer object right now."""
    return getattr(tokenizer, "_adrecall_wobert_original", None) is not None


def enable_wobert(tokenizer: Any) -> Any:
    """Install WoBERT pre-tokenisation in a fast BERT tokenizer, in place; returns it.

    The tokenizer's config flag is set too, so a later ``save_pretrained`` records it.
    """
    if wobert_active(tokenizer):
        return tokenizer
    from tokenizers import normalizers, pre_tokenizers

    jieba_module()
    backend: Any = getattr(tokenizer, "backend_tokenizer", None)
    normalizer: Any = getattr(backend, "normalizer", None)
    if backend is None or type(normalizer).__name__ != "BertNormalizer":
        raise ValueError(
            f"WoBERT pre-tokenisation needs a fast BERT (WordPiece) tokenizer with a "
            f"BertNormalizer, got {type(tokenizer).__name__} with "
            f"{type(normalizer).__name__}; use a BERT-family model"
        )
    original = (backend.normalizer, backend.pre_tokenizer)
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=normalizer.clean_text,
        handle_chinese_chars=False,  # CJK runs reach the jieba step whole
        strip_accents=normalizer.strip_accents,
        lowercase=normalizer.lowercase,
    )
    custom = pre_tokenizers.PreTokenizer.custom(_WoBertPreTokenizer(cjk_vocab_words(tokenizer)))
    steps = [original[1], custom] if original[1] is not None else [custom]
    backend.pre_tokenizer = pre_tokenizers.Sequence(steps)
    tokenizer._adrecall_wobert_original = original
    tokenizer.__class__ = _wobert_class(type(tokenizer))  # type: ignore[arg-type]
    tokenizer.init_kwargs[WOBERT_FLAG] = True
    return tokenizer


def disable_wobert(tokenizer: Any) -> Any:
    """Undo :func:`enable_wobert` (standard BERT tokenisation again, flag cleared); returns it."""
    if wobert_active(tokenizer):
        backend = tokenizer.backend_tokenizer
        backend.normalizer, backend.pre_tokenizer = tokenizer._adrecall_wobert_original
        tokenizer._adrecall_wobert_original = None
        tokenizer.__class__ = tokenizer.__class__.__mro__[1]
    tokenizer.init_kwargs.pop(WOBERT_FLAG, None)
    return tokenizer


def wobert_flag(tokenizer: Any) -> bool:
    """Whether the tokenizer's config asks for WoBERT pre-tokenisation."""
    return bool(getattr(tokenizer, "init_kwargs", {}).get(WOBERT_FLAG, False))


def maybe_enable_wobert(model_or_tokenizer: Any) -> bool:
    """Enable WoBERT on a tokenizer, or on the tokenizer of a sentence-transformers model (or
    anything with a ``tokenizer`` attribute), when its config flag asks for it.

    Returns whether WoBERT is now active. This is the one call a loader adds to honour the flag.
    """
    tokenizer = getattr(model_or_tokenizer, "tokenizer", model_or_tokenizer)
    if tokenizer is None or not hasattr(tokenizer, "init_kwargs"):
        return False
    if wobert_flag(tokenizer):
        enable_wobert(tokenizer)
    return wobert_active(tokenizer)


@contextmanager
def _standard_components(tokenizer: Any) -> Iterator[None]:
    backend = tokenizer.backend_tokenizer
    active = (backend.normalizer, backend.pre_tokenizer)
    backend.normalizer, backend.pre_tokenizer = tokenizer._adrecall_wobert_original
    try:
        yield
    finally:
        backend.normalizer, backend.pre_tokenizer = active


@cache
def _wobert_class(base: Any) -> type:
    """A subclass of ``base`` with the same name (so saved configs name ``base``) whose
    ``save_pretrained`` writes the standard components: the custom jieba step cannot be
    serialised."""

    def save_pretrained(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _standard_components(self):
            return base.save_pretrained(self, *args, **kwargs)

    def __deepcopy__(self: Any, memo: dict) -> Any:
        import copy

        with _standard_components(self):
            twin = copy.copy(self)
            twin.__class__ = base
            twin._adrecall_wobert_original = None
            twin = copy.deepcopy(twin, memo)
        return enable_wobert(twin)

    return type(base.__name__, (base,), {
        "save_pretrained": save_pretrained,
        "__deepcopy__": __deepcopy__,
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
    })


def _plain_normalizer(tokenizer: Any) -> Any:
    """The tokenizer's normaliser without CJK spacing (lower-casing etc. as configured)."""
    from tokenizers import normalizers

    backend = tokenizer.backend_tokenizer
    if wobert_active(tokenizer):
        return backend.normalizer
    normalizer = backend.normalizer
    if type(normalizer).__name__ != "BertNormalizer":
        raise ValueError(
            f"WoBERT tokenisation needs a BERT tokenizer (BertNormalizer), got "
            f"{type(normalizer).__name__}"
        )
    return normalizers.BertNormalizer(
        clean_text=normalizer.clean_text,
        handle_chinese_chars=False,
        strip_accents=normalizer.strip_accents,
        lowercase=normalizer.lowercase,
    )
