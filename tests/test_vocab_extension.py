"""domain_adapt's vocabulary extension and the WoBERT pre-tokenisation it can switch on, and
that every loader honours it.

Everything runs on a tiny random BERT written to tmp_path (tests/tiny_bert.py), except one test
that extends the real embedded model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("jieba")

from adrecall.model_loading import load_sentence_transformer, load_tokenizer
from adrecall.wobert import (
    WOBERT_FLAG,
    enable_wobert,
    wobert_active,
    wobert_tokenize,
)
from domain_adapt import model_io
from domain_adapt.vocab_extension import (
    ExtendConfig,
    collect_new_tokens,
    extend_model,
    extend_vocabulary,
)
from tests.tiny_bert import CORPUS, VOCAB, embeddings

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # tiny matrices: see conftest


# ---------------------------------------------------------------- vocabulary extension
def test_extension_keeps_every_old_id_and_embedding(tiny: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    old_tok = AutoTokenizer.from_pretrained(str(tiny))
    summary = extend_vocabulary(CORPUS, tmp_path / "ext", model=tiny,
                                config=ExtendConfig(words=5, min_word_count=2))
    assert (summary.out, summary.model) == (str(tmp_path / "ext"), str(tiny.resolve()))
    new_tok = AutoTokenizer.from_pretrained(str(tmp_path / "ext"))
    old_vocab, new_vocab = old_tok.get_vocab(), new_tok.get_vocab()
    assert summary.added_chars > 0 and summary.added_words > 0
    assert all(new_vocab[t] == i for t, i in old_vocab.items())
    assert sorted(new_vocab.values()) == list(range(len(new_vocab)))
    old_rows, new_rows = embeddings(tiny), embeddings(tmp_path / "ext")
    assert new_rows.shape[0] == len(new_vocab)
    assert torch.equal(new_rows[: len(old_vocab)], old_rows)
    assert "酒" in new_vocab and new_tok.tokenize("酒店") == ["酒", "店"]
    lines = (tmp_path / "ext" / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert lines[: len(VOCAB)] == VOCAB and len(lines) == len(new_vocab)
    history = json.loads((tmp_path / "ext" / "domain_adapt.json").read_text(encoding="utf-8"))
    assert history["steps"][0]["step"] == "extend-vocab"


def test_word_of_known_pieces_starts_at_their_mean(tiny: Path) -> None:
    from transformers import AutoTokenizer

    model = model_io.load_base_model(tiny)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny))
    before = model.get_input_embeddings().weight.detach().clone()
    new_tok, report = extend_model(model, tokenizer, ["北京", "场", "机场"], init_std=0.02)
    rows = model.get_input_embeddings().weight.detach()
    vocab = tokenizer.get_vocab()
    mean = (before[vocab["北"]] + before[vocab["京"]]) / 2
    assert torch.allclose(rows[new_tok.get_vocab()["北京"]], mean)
    assert report.mean_of_pieces == ["北京"]
    assert report.random_normal == ["场", "机场"]  # 场 is [UNK] to the old tokenizer
    random_row = rows[new_tok.get_vocab()["场"]]
    assert 0 < float(random_row.std()) < 0.1
    assert torch.equal(rows[: len(vocab)], before)


def test_collect_new_tokens_ranks_by_frequency_and_skips_known(tiny: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny))
    found = collect_new_tokens(CORPUS, tokenizer, ExtendConfig(words=3, min_word_count=2))
    chars = [c for c, _ in found.chars]
    assert "北" not in chars and chars[0] == "壳"  # 壳 occurs three times
    assert dict(found.words).get("手机壳", 0) >= 2 or "手机" in dict(found.words)


def test_default_model_extension_loads_in_encoder(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from adrecall.models import default_model_dir
    from retrieval.encoder import Encoder

    texts = ["特价机票 北京飞上海", "少儿编程课程 免费试听", "鲸鱼 鳄鱼"]
    out = tmp_path / "ext-default"
    summary = extend_vocabulary(texts, out)
    assert summary.model == "default" and summary.seconds > 0
    assert summary.added_chars >= 5 and summary.unk_rate_after == 0.0
    old_tok = AutoTokenizer.from_pretrained(str(default_model_dir()))
    new_tok = AutoTokenizer.from_pretrained(str(out))
    new_vocab = new_tok.get_vocab()
    assert all(new_vocab[t] == i for t, i in old_tok.get_vocab().items())
    old_rows, new_rows = embeddings(default_model_dir()), embeddings(out)
    assert torch.equal(new_rows[: old_rows.shape[0]], old_rows)
    encoder = Encoder(out)
    tokens = encoder._tokenizer.tokenize("鲸鱼 鳄鱼 特价")
    assert "[UNK]" not in tokens and "鲸" in tokens
    assert "[UNK]" in old_tok.tokenize("鲸鱼")
    vectors = encoder.encode(["鲸鱼", "鳄鱼"])
    assert vectors.shape == (2, 384) and not np.allclose(vectors[0], vectors[1])
    assert (out / "modules.json").is_file() and (out / "1_Pooling" / "config.json").is_file()


# ---------------------------------------------------------------- WoBERT
def test_wobert_keeps_vocabulary_words_whole_and_matches_reference(tiny: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    out = tmp_path / "wo"
    summary = extend_vocabulary(CORPUS, out, model=tiny,
                                config=ExtendConfig(words=10, min_word_count=2))
    assert summary.wobert
    plain = AutoTokenizer.from_pretrained(str(out))
    assert plain.init_kwargs.get(WOBERT_FLAG) is True and not wobert_active(plain)
    tokenizer = load_tokenizer(out)
    assert wobert_active(tokenizer)
    texts = ["北京飞上海便宜机票", "cheap flight 北京机场, hotel", "playing runs", "我爱北京天安门"]
    for text in texts:
        assert tokenizer.tokenize(text) == wobert_tokenize(plain, text)
    assert "北京" in tokenizer.tokenize("我爱北京")
    assert plain.tokenize("我爱北京") == ["我", "爱", "北", "京"]  # without the flag honoured
    assert tokenizer.tokenize("playing runs") == plain.tokenize("playing runs")
    tokenizer.save_pretrained(str(tmp_path / "saved"))  # the jieba step is not serialised
    again = AutoTokenizer.from_pretrained(str(tmp_path / "saved"))
    assert again.init_kwargs.get(WOBERT_FLAG) is True
    enable_wobert(again)
    assert again(texts[1])["input_ids"] == tokenizer(texts[1])["input_ids"]


def test_every_loader_honours_the_wobert_flag(tiny: Path, tmp_path: Path) -> None:
    """Retrieval, BertSim (new and reloaded) and encoder training read the flag the same way."""
    from encoder_training.pooling_variants import PoolingEmbedder
    from rerank import BertSim
    from retrieval.encoder import Encoder

    out = tmp_path / "wo"
    extend_vocabulary(CORPUS, out, model=tiny, config=ExtendConfig(words=10, min_word_count=2))
    bertsim = BertSim.from_encoder(out, max_length=32)
    bertsim.save(tmp_path / "sim")
    tokenizers = {
        "retrieval": Encoder(out)._tokenizer,
        "bertsim": bertsim.tokenizer,
        "bertsim reloaded": BertSim.load(tmp_path / "sim").tokenizer,
        "encoder training": load_sentence_transformer(out).tokenizer,
        "pooling diagnostics": PoolingEmbedder(out)._tokenizer,
    }
    for name, tokenizer in tokenizers.items():
        assert wobert_active(tokenizer), name
        assert "北京" in tokenizer.tokenize("我爱北京"), name


def test_an_index_refuses_a_model_whose_wobert_flag_changed(tiny: Path, tmp_path: Path) -> None:
    """Same weights, other tokens: the index records WoBERT and search refuses a mismatch."""
    import pandas as pd

    from adrecall.model_loading import set_wobert_flag
    from index_build.build_job import build_index
    from retrieval.index_store import IndexFormatError
    from retrieval.retriever import Retriever

    model = tmp_path / "wo"
    extend_vocabulary(CORPUS, model, model=tiny, config=ExtendConfig(words=10, min_word_count=2))
    ads = tmp_path / "ads.csv"
    pd.DataFrame({"ad_id": [f"a{i}" for i in range(len(CORPUS))], "text": CORPUS}).to_csv(ads, index=False)
    build_index(ads, tmp_path / "idx", model=model, progress=False)
    retriever = Retriever.load(tmp_path / "idx")
    assert retriever.manifest.wobert
    assert retriever.search(["北京机票"], k=3)[0]
    set_wobert_flag(model, False)
    with pytest.raises(IndexFormatError, match="WoBERT pre-tokenisation on but model .* off"):
        Retriever.load(tmp_path / "idx")
