"""Shared fixtures: the real embedded encoder (loaded once) and small ad tables."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from retrieval.encoder import Encoder

# exported models (adrecall.onnx_export) go to a cache of this run, removed at its end, not
# to the user's home
if "ADRECALL_CACHE_DIR" not in os.environ:
    os.environ["ADRECALL_CACHE_DIR"] = _RUN_CACHE = tempfile.mkdtemp(prefix="adrecall-test-cache-")
    atexit.register(shutil.rmtree, _RUN_CACHE, ignore_errors=True)

ADS = [
    ("a01", "Cheap flights to Tokyo, book today and save 30%"),
    ("a02", "Luxury hotel rooms in Paris with breakfast included"),
    ("a03", "Learn Python programming online, beginner friendly courses"),
    ("a04", "Car insurance quotes in minutes, compare 20 insurers"),
    ("a05", "Running shoes sale: lightweight trainers for marathon runners"),
    ("a06", "Home cleaning service, trusted cleaners near you"),
    ("a07", "Fresh pizza delivered hot in 30 minutes or it is free"),
    ("a08", "Mortgage rates at a 5 year low, get pre-approved"),
    ("a09", "Noise cancelling headphones with 40 hour battery"),
    ("a10", "Family dentist accepting new patients this month"),
    ("a11", "特价机票 北京飞上海 低至299元"),
    ("a12", "少儿编程课程 免费试听一节"),
]


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """The embedded all-MiniLM-L6-v2 on PyTorch fp32, loaded once for the whole run: tests
    compare numbers across batch compositions, which bf16 back-ends round differently
    (tests/test_backends.py holds every back-end to fp32)."""
    return Encoder(backend="torch")


@pytest.fixture
def ads_frame() -> pd.DataFrame:
    """A dozen ads with an extra metadata column."""
    return pd.DataFrame(
        {
            "ad_id": [a for a, _ in ADS],
            "text": [t for _, t in ADS],
            "industry": [f"industry-{i % 4}" for i in range(len(ADS))],
        }
    )


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` in the format named by ``path``'s suffix."""
    suffix = path.suffix
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == ".jsonl":
        with open(path, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in frame.to_dict("records"))
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        raise ValueError(f"no writer for {suffix}")
    return path


TINY_WORDS = ["red", "blue", "green", "shoes", "car", "phone", "cheap", "sale", "fast", "new",
              "insurance", "loan", "hotel", "pizza", "shirt", "bike"]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with a 40-token vocabulary."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny_bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS,
             *"abcdefghijklmnopqrstuvwxyz"]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    tokenizer = BertTokenizerFast.from_pretrained(str(path))  # works in transformers 4 and 5
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
    )
    BertModel(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture
def torch_one_thread():  # type: ignore[no-untyped-def]
    """Run a test on one torch thread: tiny matrices on a shared 2-core machine run 10-40x
    faster on one thread than on two; request it (or wrap it in an autouse fixture)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """The domain_adapt tests' tiny random BERT (tests/tiny_bert.py), fresh per test."""
    from tests.tiny_bert import make_tiny_model

    return make_tiny_model(tmp_path / "tiny")
