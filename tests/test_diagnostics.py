"""Anisotropy diagnostics: numeric helpers, pooling variants, report files, `adrecall diagnose`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adrecall.cli import main
from encoder_training.diagnostics import (
    diagnose,
    parse_whiten_dims,
    random_pairs,
    read_texts,
    separation_auc,
    variance_shares,
    write_report,
)
from encoder_training.pairs import pairs_from_lists
from encoder_training.pooling_variants import VARIANTS, PoolingEmbedder
from encoder_training.tiny_model import make_tiny_model
from tests.conftest import ADS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WORDS = ["cheap", "flights", "hotel", "python", "course", "insurance", "shoes", "pizza", "mortgage", "dentist", "headphones"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def _texts(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(WORDS, size=4)) + f" offer {i}" for i in range(n)]


# ---------------------------------------------------------------- numeric helpers


def test_random_pairs_never_pair_a_text_with_itself() -> None:
    i, j = random_pairs(500, 5000, seed=1)
    assert len(i) == 5000 and not np.any(i == j)
    assert i.min() >= 0 and max(i.max(), j.max()) < 500


def test_random_pairs_take_every_pair_of_a_small_sample() -> None:
    i, j = random_pairs(5, 100)
    assert sorted(zip(i.tolist(), j.tolist())) == [(a, b) for a in range(5) for b in range(a + 1, 5)]


def test_random_pairs_refuse_a_single_text() -> None:
    with pytest.raises(ValueError, match="at least 2 texts"):
        random_pairs(1, 10)


def test_variance_shares_of_vectors_on_one_axis_and_of_isotropic_ones() -> None:
    rng = np.random.default_rng(0)
    line = np.zeros((200, 16))
    line[:, 0], line[:, 1] = 1.0, 0.1 * rng.normal(size=200)  # spread along one direction only
    assert variance_shares(line)[1] > 0.99
    iso = variance_shares(rng.normal(size=(5000, 64)))
    assert iso[1] < 0.03 and 0.1 < iso[10] < 0.2 and iso[1] <= iso[10] <= 1


def test_separation_auc_matches_counting_every_pair() -> None:
    rng = np.random.default_rng(3)
    pos, neg = rng.integers(0, 5, 30).astype(float), rng.integers(0, 5, 40).astype(float)
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert separation_auc(pos, neg) == pytest.approx(brute)
    assert separation_auc(pos, np.array([])) is None


def test_parse_whiten_dims() -> None:
    assert parse_whiten_dims("full,256, 128", 384) == [None, 256, 128]
    assert parse_whiten_dims(None) == []
    with pytest.raises(ValueError, match="'abc' is not a number"):
        parse_whiten_dims("full,abc")
    with pytest.raises(ValueError, match="between 1 and the model's 384"):
        parse_whiten_dims("512", 384)


# ---------------------------------------------------------------- reading texts


def test_read_texts_from_txt_and_table(tmp_path: Path) -> None:
    txt = tmp_path / "sample.txt"
    txt.write_text("first ad\n\n  second ad \nthird ad\n", encoding="utf-8")
    assert read_texts(txt) == ["first ad", "second ad", "third ad"]
    table = tmp_path / "ads.parquet"
    pd.DataFrame({"body": ["a b", "c d", "e f", "g h"]}).to_parquet(table)
    assert read_texts(table, text_column="body") == ["a b", "c d", "e f", "g h"]
    sampled = read_texts(table, text_column="body", max_texts=2, seed=1)
    assert len(sampled) == 2 and set(sampled) <= {"a b", "c d", "e f", "g h"}


def test_read_texts_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_texts(tmp_path / "absent.txt")
    one = tmp_path / "one.txt"
    one.write_text("only one\n", encoding="utf-8")
    with pytest.raises(ValueError, match="at least 2"):
        read_texts(one)
    table = tmp_path / "ads.csv"
    pd.DataFrame({"text": ["ok", ""], "x": [1, 2]}).to_csv(table, index=False)
    with pytest.raises(ValueError, match="data row 2 column 'text'"):
        read_texts(table)
    with pytest.raises(ValueError, match="missing column"):
        read_texts(table, text_column="body")
    sheet = tmp_path / "x.xlsx"
    sheet.write_text("x", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown text format '.xlsx'"):
        read_texts(sheet)


def test_read_texts_names_the_byte_and_line_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "texts.txt"
    lines = [f"text number {i}\n".encode() for i in range(5000)]  # ~85 KB, many read buffers
    lines[4321] = b"caf\xe9 au lait\n"  # Latin-1, not UTF-8
    path.write_bytes(b"".join(lines))
    offset = sum(len(x) for x in lines[:4321]) + 3
    with pytest.raises(ValueError, match=rf"byte {offset} \(line 4322\) is not UTF-8"):
        read_texts(path)


# ---------------------------------------------------------------- tiny random model


def test_pooling_variants_of_a_tiny_model(tiny_model: Path) -> None:
    from retrieval.encoder import Encoder

    texts = ["cheap flights to tokyo", "learn python", "特价机票 北京飞上海"]
    vectors = PoolingEmbedder(tiny_model).embed(texts, batch_size=2)
    assert set(vectors) == set(VARIANTS)
    assert all(v.shape == (3, 32) and v.dtype == np.float32 for v in vectors.values())
    # the model's own pooling is exactly what the index encoder produces
    own = Encoder(tiny_model, backend="torch").encode(texts, normalize=False)
    np.testing.assert_allclose(vectors["model"], own, atol=1e-5)
    np.testing.assert_allclose(vectors["mean"], own, atol=1e-5)  # its pooling is mean


def test_pooling_variants_refuse_unknown_variant_and_blank_text(tiny_model: Path) -> None:
    embedder = PoolingEmbedder(tiny_model)
    with pytest.raises(ValueError, match="unknown pooling variant"):
        embedder.embed(["a b"], ["max"])
    with pytest.raises(ValueError, match="row 1 is empty"):
        embedder.embed(["fine", "  "])


def test_diagnose_tiny_model_figures_in_range_and_files_written(tiny_model: Path, tmp_path: Path) -> None:
    texts = _texts(40)
    pairs = pairs_from_lists(
        ["cheap flights", "cheap flights", "python course", "python course"],
        [texts[0], texts[1], texts[2], texts[3]],
        [2, 0, 1, 0],
    )
    report = diagnose(texts, model=tiny_model, pairs=pairs, whiten_dims=[None, 8], n_pairs=500)
    names = [v.variant for v in report.variants]
    assert names == ["cls", "mean", "first_last_avg", "model", "whitened_full", "whitened_8"]
    for v in report.variants:
        assert -1 <= v.random_pair_cosine_mean <= 1 and v.random_pair_cosine_std >= 0
        assert 0 < v.top1_variance_share <= v.top10_variance_share <= 1 + 1e-9
        assert 0 <= v.mean_vector_norm <= 1 + 1e-9
        assert v.n_relevant_pairs == 2 and v.n_irrelevant_pairs == 2
        assert v.relevant_pair_cosine_mean is not None and v.relevant_vs_irrelevant_auc is not None
        assert 0 <= v.relevant_vs_irrelevant_auc <= 1
        assert v.n_random_pairs == 500
    whitened = report.variants[4]
    assert whitened.dimension == 32 and report.variants[5].dimension == 8
    assert abs(whitened.random_pair_cosine_mean) < 0.1  # fitted on this sample: isotropic
    paths = write_report(report, tmp_path / "out" / "report.txt")
    assert paths["png"].read_bytes()[:8] == PNG_MAGIC
    figures = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert [v["variant"] for v in figures["variants"]] == names
    assert "raw CLS" in paths["text"].read_text(encoding="utf-8")


def test_diagnose_refuses_whitening_with_too_few_texts(tiny_model: Path) -> None:
    with pytest.raises(ValueError, match="needs at least 32 texts"):
        diagnose(_texts(10), model=tiny_model, whiten_dims=[None])


# ---------------------------------------------------------------- the real default model


def test_default_model_raw_cls_is_more_anisotropic_than_its_own_pooling() -> None:
    texts = [t for _, t in ADS]
    pairs = pairs_from_lists(
        ["cheap plane tickets", "cheap plane tickets", "dentist near me", "dentist near me"],
        [ADS[0][1], ADS[6][1], ADS[9][1], ADS[4][1]],
        [2, 0, 2, 0],
    )
    report = diagnose(texts, pairs=pairs, n_pairs=1000)
    by = {v.variant: v for v in report.variants}
    assert by["cls"].random_pair_cosine_mean > by["model"].random_pair_cosine_mean + 0.1
    assert by["model"].random_pair_cosine_mean < 0.4
    relevant, irrelevant = by["model"].relevant_pair_cosine_mean, by["model"].irrelevant_pair_cosine_mean
    assert relevant is not None and irrelevant is not None and relevant > irrelevant
    assert by["model"].relevant_vs_irrelevant_auc == 1.0
    assert by["model"].dimension == 384 and by["model"].n_random_pairs == 66  # all 12*11/2 pairs


# ---------------------------------------------------------------- the command


def test_diagnose_command_writes_the_report(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sample = tmp_path / "sample.txt"
    sample.write_text("\n".join(_texts(20)) + "\n", encoding="utf-8")
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"query": ["cheap flights", "pizza"], "text": ["flights offer", "shoes sale"],
                  "label": [2, 0]}).to_csv(pairs, index=False)
    out = tmp_path / "rep" / "anisotropy.txt"
    code = main(["diagnose", "--texts", str(sample), "--model", str(tiny_model), "--labelled", str(pairs),
                 "--out", str(out), "--whiten-dim", "8", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "model's own pooling" in printed and "whitened model (8)" in printed and "rel cos" in printed
    assert out.is_file() and out.with_suffix(".png").is_file() and out.with_suffix(".json").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--whiten-dim", "0"], "whitening dimension 0 must be between 1"),
        (["--random-pairs", "0"], "--random-pairs must be at least 1"),
        (["--labelled", "MISSING"], "does not exist"),
    ],
)
def test_diagnose_command_bad_input_is_one_line(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture, extra: list[str], message: str
) -> None:
    sample = tmp_path / "sample.txt"
    sample.write_text("one ad\nanother ad\n", encoding="utf-8")
    extra = [str(tmp_path / "missing.csv") if e == "MISSING" else e for e in extra]
    code = main(["diagnose", "--texts", str(sample), "--model", str(tiny_model), "--out",
                 str(tmp_path / "r.txt"), "--quiet", *extra])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
