"""A tiny random BERT (2 layers, hidden 16, a WordPiece vocabulary of English pieces and a few
CJK characters) and a small mixed corpus, for the domain_adapt tests: seconds per test."""

from __future__ import annotations

from pathlib import Path

import torch

from adrecall.model_loading import encoder_dir

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PIECES = ["play", "run", "walk", "the", "a", "##ing", "##s", "##er", "fast", "slow", "cheap",
          "flight", "hotel", ",", "."]
CHARS = list("我爱北京天安门手机上海飞便宜的")
VOCAB = SPECIALS + PIECES + CHARS

CORPUS = [
    "我爱北京天安门",
    "北京飞上海便宜机票",
    "便宜的手机壳",
    "北京机场 cheap flight",
    "上海酒店 hotel",
    "手机壳 手机壳 北京",
    "playing fast runs",
]


def make_tiny_model(path: Path, vocab: list[str] = VOCAB, seed: int = 0) -> Path:
    """A random 2-layer BERT (hidden 16) with a WordPiece tokenizer, as a plain HF folder."""
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(str(path))
    tokenizer = BertTokenizer(vocab={t: i for i, t in enumerate(vocab)})
    tokenizer.save_pretrained(str(path))
    return path


def embeddings(model_dir: Path) -> torch.Tensor:
    from safetensors.torch import load_file

    weights = load_file(str(encoder_dir(model_dir) / "model.safetensors"))
    key = next(k for k in weights if k.endswith("word_embeddings.weight"))
    return weights[key]
