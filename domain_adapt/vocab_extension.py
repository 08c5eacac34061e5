"""Vocabulary extension: give a BERT tokenizer the CJK characters (and, optionally, the frequent
jieba words, as WoBERT does) of a corpus that it lacks, and the model rows for them.

New tokens are appended after the last old id, so every old token keeps its id and its
embedding row. A new token whose pieces under the old tokenizer are all known (no [UNK]) —
e.g. a word whose characters the model already had — starts at the mean of their
embeddings; any other new token (a character the model never saw) starts from a normal
distribution with a small standard deviation (the config's ``initializer_range``, 0.02 for
BERT). Only WordPiece (BERT-family) tokenizers are supported.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from adrecall.folders import ADAPTED_MODEL, check_out
from adrecall.model_loading import encoder_dir, load_tokenizer
from adrecall.models import model_label, resolve_model_dir
from adrecall.run_summary import RunSummary
from adrecall.wobert import (
    WOBERT_FLAG,
    _plain_normalizer,
    cut_words,
    enable_wobert,
    is_cjk_char,
    is_cjk_word,
    wobert_active,
)
from domain_adapt.config import ExtendConfig
from domain_adapt.corpus import prepare_texts


@dataclass(frozen=True)
class NewTokens:
    """Tokens to add, most frequent first, with their corpus counts."""

    chars: list[tuple[str, int]] = field(default_factory=list)
    words: list[tuple[str, int]] = field(default_factory=list)

    @property
    def tokens(self) -> list[str]:
        return [t for t, _ in self.chars] + [t for t, _ in self.words]


@dataclass(frozen=True)
class InitReport:
    """How the new embedding rows were initialised."""

    first_new_id: int
    mean_of_pieces: list[str]
    random_normal: list[str]
    init_std: float


@dataclass(frozen=True)
class ExtendSummary(RunSummary):
    """What :func:`extend_vocabulary` did; ``to_dict()`` is recorded in ``domain_adapt.json``."""

    texts: int
    old_vocab_size: int
    new_vocab_size: int
    added_chars: int
    added_words: int
    mean_initialised: int
    random_initialised: int
    init_std: float
    wobert: bool
    unk_rate_before: float
    unk_rate_after: float
    config: dict


def collect_new_tokens(texts: Sequence[str], tokenizer: Any, config: ExtendConfig) -> NewTokens:
    """The CJK characters (and, if ``config.words``, jieba words) of ``texts`` that the
    tokenizer's vocabulary lacks, ranked by frequency (ties in code-point order)."""
    vocab = tokenizer.get_vocab()
    normalizer = _plain_normalizer(tokenizer)
    chars: Counter[str] = Counter()
    words: Counter[str] = Counter()
    for text in texts:
        text = normalizer.normalize_str(text)
        chars.update(c for c in text if is_cjk_char(c))
        if config.words:
            for run in _cjk_runs(text):
                words.update(
                    w for w in cut_words(run) if 2 <= len(w) <= config.max_word_length
                )
    new_chars = _ranked(
        (c, n) for c, n in chars.items() if c not in vocab and n >= config.min_char_count
    )
    if config.max_chars is not None:
        new_chars = new_chars[: config.max_chars]
    new_words = _ranked(
        (w, n)
        for w, n in words.items()
        if w not in vocab and n >= config.min_word_count and is_cjk_word(w)
    )[: config.words]
    return NewTokens(new_chars, new_words)


def extend_tokenizer(tokenizer: Any, tokens: Sequence[str]) -> Any:
    """A new fast tokenizer whose WordPiece vocabulary is the old one plus ``tokens``
    (appended in order, ids ``len(vocab)..``); the old tokenizer is left unchanged."""
    from transformers import AutoTokenizer

    tokens = list(dict.fromkeys(tokens))
    vocab = tokenizer.get_vocab()
    clash = [t for t in tokens if t in vocab]
    if clash:
        raise ValueError(f"tokens already in the vocabulary: {clash[:5]}; add only new tokens")
    with tempfile.TemporaryDirectory(prefix="adrecall-vocab-") as tmp:
        tokenizer.save_pretrained(tmp)
        path = Path(tmp) / "tokenizer.json"
        if not path.is_file():
            raise ValueError(
                f"{type(tokenizer).__name__} wrote no tokenizer.json; vocabulary extension "
                "needs a fast (Rust) tokenizer"
            )
        spec = json.loads(path.read_text(encoding="utf-8"))
        model = spec.get("model", {})
        if model.get("type") != "WordPiece":
            raise ValueError(
                f"vocabulary extension supports WordPiece (BERT-family) tokenizers, got a "
                f"{model.get('type')!r} tokenizer"
            )
        words = model["vocab"]
        size = len(words)
        if sorted(words.values()) != list(range(size)):
            raise ValueError("the tokenizer's vocabulary ids are not 0..n-1; cannot append to it")
        beyond = [a["content"] for a in spec.get("added_tokens", []) if a["id"] >= size]
        if beyond:
            raise ValueError(
                f"the tokenizer has added tokens after its vocabulary ({beyond[:3]}); appending "
                "would shift their ids. Extend a tokenizer without such tokens"
            )
        for offset, token in enumerate(tokens):
            words[token] = size + offset
        path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        vocab_txt = Path(tmp) / "vocab.txt"
        if vocab_txt.exists():
            vocab_txt.unlink()  # rebuilt from tokenizer.json on save
        new = AutoTokenizer.from_pretrained(tmp, local_files_only=True)
    if wobert_active(tokenizer) or new.init_kwargs.get(WOBERT_FLAG):
        new.init_kwargs.pop(WOBERT_FLAG, None)
        enable_wobert(new)  # the new word list takes effect
    return new


def extend_model(
    model: Any,
    tokenizer: Any,
    tokens: Sequence[str],
    *,
    init_std: float | None = None,
    seed: int = 0,
) -> tuple[Any, InitReport]:
    """Append ``tokens`` to the tokenizer and rows for them to ``model``'s word embeddings.

    Returns the new tokenizer and how each row was initialised; ``model`` is changed in place
    (old rows untouched). Works for a bare encoder and for a model with a tied MLM head.
    """
    new_tokenizer = extend_tokenizer(tokenizer, tokens)
    embeddings = model.get_input_embeddings()
    old_rows = int(embeddings.weight.shape[0])
    first_new_id = len(tokenizer.get_vocab())
    std = float(init_std if init_std is not None else getattr(model.config, "initializer_range", 0.02))
    new_rows = max(old_rows, first_new_id + len(tokens))
    if new_rows != old_rows:
        model.resize_token_embeddings(new_rows, mean_resizing=False)
    weight = model.get_input_embeddings().weight
    generator = torch.Generator().manual_seed(seed)
    unk_id = tokenizer.unk_token_id
    mean_init: list[str] = []
    random_init: list[str] = []
    with torch.no_grad():
        for offset, token in enumerate(tokens):
            row = first_new_id + offset
            pieces = _old_pieces(tokenizer, token)
            if pieces and unk_id not in pieces and max(pieces) < first_new_id:
                weight[row] = weight[pieces].mean(dim=0)
                mean_init.append(token)
            else:
                weight[row] = torch.randn(weight.shape[1], generator=generator) * std
                random_init.append(token)
    return new_tokenizer, InitReport(first_new_id, mean_init, random_init, std)


def unk_rate(tokenizer: Any, texts: Sequence[str]) -> float:
    """Fraction of the tokens of ``texts`` (no special tokens) that are [UNK]."""
    if not texts:
        return 0.0
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    total = sum(len(row) for row in ids)
    unk = tokenizer.unk_token_id
    return sum(row.count(unk) for row in ids) / max(total, 1)


def extend_vocabulary(
    texts: Sequence[str], out: str | Path, *, model: str | Path | None = "default",
    config: ExtendConfig | None = None,
) -> ExtendSummary:
    """Extend ``model``'s vocabulary with what the corpus ``texts`` needs; save it to ``out``.
    Arguments as for every step (:mod:`domain_adapt`)."""
    from domain_adapt import model_io

    config = config or ExtendConfig()
    started = time.perf_counter()
    source = resolve_model_dir(model)
    out_dir = check_out(out, ADAPTED_MODEL, overwrite=config.overwrite, inputs=(source,))
    corpus = prepare_texts(texts, config.normalize_text)
    enc_dir = encoder_dir(source)
    tokenizer = load_tokenizer(source)
    new_tokens = collect_new_tokens(corpus, tokenizer, config)
    base = model_io.load_base_model(enc_dir)
    new_tokenizer, report = extend_model(
        base, tokenizer, new_tokens.tokens, init_std=config.init_std, seed=config.seed
    )
    if config.words and not wobert_active(new_tokenizer):
        enable_wobert(new_tokenizer)
    sample = corpus[:20_000]
    summary = ExtendSummary(
        out=str(out_dir),
        model=model_label(model),
        seconds=0.0,
        texts=len(corpus),
        old_vocab_size=len(tokenizer.get_vocab()),
        new_vocab_size=len(new_tokenizer.get_vocab()),
        added_chars=len(new_tokens.chars),
        added_words=len(new_tokens.words),
        mean_initialised=len(report.mean_of_pieces),
        random_initialised=len(report.random_normal),
        init_std=report.init_std,
        wobert=wobert_active(new_tokenizer),
        unk_rate_before=round(unk_rate(tokenizer, sample), 6),
        unk_rate_after=round(unk_rate(new_tokenizer, sample), 6),
        config=asdict(config),
    )
    model_io.begin_output(out_dir, source, overwrite=config.overwrite)
    try:
        out_enc = model_io.copy_model_tree(source, out_dir)
        model_io.save_encoder(base, new_tokenizer, out_enc)
        (out_dir / "added_tokens_counts.tsv").write_text(
            "".join(f"{t}\t{n}\n" for t, n in new_tokens.chars + new_tokens.words),
            encoding="utf-8",
        )
        seconds = round(time.perf_counter() - started, 2)
        summary = replace(summary, seconds=seconds)
        model_io.finish_output(out_dir, source, {"step": "extend-vocab", **summary.to_dict()})
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    return summary


def _old_pieces(tokenizer: Any, token: str) -> list[int]:
    return list(tokenizer(token, add_special_tokens=False)["input_ids"])


def _ranked(items: Any) -> list[tuple[str, int]]:
    return sorted(items, key=lambda item: (-item[1], item[0]))


def _cjk_runs(text: str) -> list[str]:
    runs: list[str] = []
    current: list[str] = []
    for char in text:
        if is_cjk_char(char):
            current.append(char)
        elif current:
            runs.append("".join(current))
            current = []
    if current:
        runs.append("".join(current))
    return runs
