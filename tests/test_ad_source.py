"""Every input format reads the same ads; every bad-input class has its own clear error."""

from __future__ import annotations

import functools
import json
import operator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adrecall.tables import TableError
from index_build.ad_source import AdSource, AdSourceError
from tests.conftest import write_table

FORMATS = [".csv", ".tsv", ".jsonl", ".parquet"]


@pytest.mark.parametrize("suffix", FORMATS)
def test_every_format_yields_the_same_ads_in_chunks(
    tmp_path: Path, ads_frame: pd.DataFrame, suffix: str
) -> None:
    path = write_table(ads_frame, tmp_path / f"ads{suffix}")
    source = AdSource(path)
    assert source.scan() == len(ads_frame)
    chunks = list(source.chunks(chunk_rows=5))
    assert [len(c) for c in chunks] == [5, 5, 2]
    assert [c.first_row for c in chunks] == [0, 5, 10]
    assert functools.reduce(operator.iadd, (c.ad_ids for c in chunks), []) == ads_frame["ad_id"].tolist()
    assert functools.reduce(operator.iadd, (c.texts for c in chunks), []) == ads_frame["text"].tolist()
    metadata = [json.loads(m) for c in chunks for m in c.metadata]
    assert [m["industry"] for m in metadata] == ads_frame["industry"].tolist()


@pytest.mark.parametrize("suffix", FORMATS)
def test_configurable_column_names(tmp_path: Path, ads_frame: pd.DataFrame, suffix: str) -> None:
    frame = ads_frame.rename(columns={"ad_id": "id", "text": "title"})
    path = write_table(frame, tmp_path / f"ads{suffix}")
    assert AdSource(path, id_column="id", text_column="title").scan() == len(frame)


def test_integer_ids_become_strings(tmp_path: Path, ads_frame: pd.DataFrame) -> None:
    frame = ads_frame.assign(ad_id=range(100, 100 + len(ads_frame)))
    path = write_table(frame, tmp_path / "ads.parquet")
    chunk = next(AdSource(path).chunks(100))
    assert chunk.ad_ids[:2] == ["100", "101"]


@pytest.mark.parametrize("suffix", FORMATS)
def test_missing_column(tmp_path: Path, ads_frame: pd.DataFrame, suffix: str) -> None:
    path = write_table(ads_frame.drop(columns=["text"]), tmp_path / f"ads{suffix}")
    with pytest.raises(TableError, match=r"missing column\(s\) \['text'\]"):
        AdSource(path).scan()


@pytest.mark.parametrize("suffix", FORMATS)
def test_duplicate_ids_name_both_rows(tmp_path: Path, ads_frame: pd.DataFrame, suffix: str) -> None:
    frame = ads_frame.copy()
    frame.loc[7, "ad_id"] = "a03"
    path = write_table(frame, tmp_path / f"ads{suffix}")
    with pytest.raises(AdSourceError, match="'a03' appears twice, at data rows 3 and 8"):
        AdSource(path).scan()


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_empty_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"ads{suffix}"
    path.write_text("")
    with pytest.raises(TableError, match="empty|no rows"):
        AdSource(path).scan()


@pytest.mark.parametrize("suffix", FORMATS)
def test_header_without_ads(tmp_path: Path, ads_frame: pd.DataFrame, suffix: str) -> None:
    if suffix == ".jsonl":
        pytest.skip("a JSONL file has no header: an empty one is the empty-file case")
    path = write_table(ads_frame.iloc[:0], tmp_path / f"ads{suffix}")
    with pytest.raises(AdSourceError, match="no ads"):
        AdSource(path).scan()


@pytest.mark.parametrize("suffix", FORMATS)
def test_empty_text_names_the_row(tmp_path: Path, ads_frame: pd.DataFrame, suffix: str) -> None:
    frame = ads_frame.copy()
    frame.loc[4, "text"] = "   "
    path = write_table(frame, tmp_path / f"ads{suffix}")
    with pytest.raises(AdSourceError, match="data row 5 has an empty text"):
        AdSource(path).scan()


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_missing_text_value_names_the_row(
    tmp_path: Path, ads_frame: pd.DataFrame, suffix: str
) -> None:
    frame = ads_frame.astype(object)
    frame.loc[2, "text"] = None
    path = write_table(frame, tmp_path / f"ads{suffix}")
    with pytest.raises(AdSourceError, match="data row 3 has no text in text column"):
        AdSource(path).scan()


def test_unreadable_csv_row(tmp_path: Path) -> None:
    path = tmp_path / "ads.csv"
    path.write_text("ad_id,text\na1,fine ad\na2,one,too many,fields\n")
    with pytest.raises(TableError, match="unreadable row.*line 3"):
        AdSource(path).scan()


def test_unreadable_jsonl_row(tmp_path: Path) -> None:
    path = tmp_path / "ads.jsonl"
    path.write_text('{"ad_id": "a1", "text": "fine"}\n{"ad_id": "a2", "text": \n')
    with pytest.raises(TableError, match="line 2 is not valid JSON"):
        AdSource(path).scan()


def test_jsonl_row_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "ads.jsonl"
    path.write_text('{"ad_id": "a1", "text": "fine"}\n["a2", "text"]\n')
    with pytest.raises(TableError, match="line 2 is a JSON list"):
        AdSource(path).scan()


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "ads.csv"
    path.write_bytes("ad_id,text\na1,机票特价\n".encode("gb18030"))
    with pytest.raises(TableError, match="not UTF-8"):
        AdSource(path).scan()


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "ads.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(TableError, match="not a readable Parquet file"):
        AdSource(path).scan()


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TableError, match="unknown table format '.xlsx'"):
        AdSource(tmp_path / "ads.xlsx").scan()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        AdSource(tmp_path / "absent.csv").scan()


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_row_with_too_few_fields_is_refused(tmp_path: Path, suffix: str) -> None:
    sep = "," if suffix == ".csv" else "\t"
    path = tmp_path / f"ads{suffix}"
    path.write_text(f"ad_id{sep}text{sep}industry\na1{sep}fine ad{sep}travel\na2{sep}no industry\n")
    with pytest.raises(TableError, match=r"data row 2 \(line 3\) has 2 fields but the header has"):
        AdSource(path).scan()


def test_repeated_header_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ads.csv"
    path.write_text("ad_id,text,text\na1,one,two\n")
    with pytest.raises(TableError, match=r"\['text'\] appear more than once in the header"):
        AdSource(path).scan()


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_bad_utf8_names_its_byte_and_row_far_into_the_file(
    tmp_path: Path, ads_frame: pd.DataFrame, suffix: str
) -> None:
    frame = pd.concat([ads_frame] * 2000, ignore_index=True)  # ~1.5 MB, many read buffers
    frame["ad_id"] = [f"ad{i}" for i in range(len(frame))]
    path = write_table(frame, tmp_path / f"ads{suffix}")
    data = bytearray(path.read_bytes())
    row = 20_000  # data row, 1-based
    line = row if suffix == ".jsonl" else row + 1
    offset = sum(len(x) for x in data.split(b"\n")[: line - 1]) + line - 1 + 2
    data[offset] = 0xFF
    path.write_bytes(bytes(data))
    where = f"line {line}" if suffix == ".jsonl" else f"data row {row}, line {line}"
    with pytest.raises(TableError, match=rf"{path.name}: byte {offset} \({where}\) is not UTF-8"):
        AdSource(path).scan()


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_null_in_integer_id_column_names_its_row(
    tmp_path: Path, ads_frame: pd.DataFrame, suffix: str
) -> None:
    ids = [100 + i for i in range(len(ads_frame))]
    ids[6] = None
    table = pa.table({"ad_id": pa.array(ids, pa.int64()), "text": ads_frame["text"].tolist()})
    path = tmp_path / f"ads{suffix}"
    if suffix == ".parquet":
        pq.write_table(table, path)  # as other tools write it: no pandas metadata
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in table.to_pylist()))
    with pytest.raises(AdSourceError, match=r"data row 7 has ad id None"):
        AdSource(path).scan()
    assert next(AdSource(path).chunks(3)).ad_ids == ["100", "101", "102"]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_missing_metadata_values_are_json_null(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"ads{suffix}"
    rows = [{"ad_id": "a1", "text": "one", "price": 1.5, "stock": 3},
            {"ad_id": "a2", "text": "two", "price": None, "stock": None}]
    if suffix == ".jsonl":
        rows.append({"ad_id": "a3", "text": "three"})  # lacks both keys
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pd.DataFrame(rows).astype({"stock": "Int64"}).to_parquet(path, index=False)
    metadata = next(AdSource(path).chunks(10)).metadata
    assert all("NaN" not in m for m in metadata), metadata
    assert json.loads(metadata[1]) == {"price": None, "stock": None}
