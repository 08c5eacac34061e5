"""A tiny, randomly initialised BERT saved as a sentence-transformers folder, for smoke tests.

It borrows the embedded default model's WordPiece tokenizer (so any English or Chinese text
tokenises as it would for real) and is a few MB, fast to load and to train for a few steps.
Its vectors mean nothing: use it to test code paths, never to measure quality.
"""

from __future__ import annotations

from pathlib import Path

from adrecall.models import default_model_dir


def make_tiny_model(
    out: str | Path,
    *,
    hidden_size: int = 32,
    layers: int = 2,
    heads: int = 2,
    pooling: str = "mean",
    max_seq_length: int = 64,
    seed: int = 0,
) -> Path:
    """Write a random ``layers``-layer BERT with ``pooling`` as a sentence-transformers folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    if hidden_size % heads:
        raise ValueError(f"hidden_size {hidden_size} must be a multiple of heads {heads}")
    out = Path(out)
    raw = out / "_hf"
    tokenizer = AutoTokenizer.from_pretrained(str(default_model_dir()), local_files_only=True)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=max(128, max_seq_length),
    )
    BertModel(config).save_pretrained(str(raw))
    tokenizer.save_pretrained(str(raw))
    local = {"local_files_only": True}
    transformer = Transformer(
        str(raw), max_seq_length=max_seq_length, model_kwargs=local, processor_kwargs=local,
        config_kwargs=local,
    )
    model = SentenceTransformer(
        modules=[transformer, Pooling(hidden_size, pooling_mode=pooling)], device="cpu",
        local_files_only=True,
    )
    model.save(str(out))
    for path in sorted(raw.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    raw.rmdir()
    return out
