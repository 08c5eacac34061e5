"""Evaluation sets in the BEIR layout, and converters from the shared real data sets.

A data set is one folder with three files (the layout of BEIR, Thakur et al. 2021):

* ``corpus.jsonl``: one JSON object per line, ``{"_id", "text"}`` plus an optional ``"title"``;
* ``queries.jsonl``: ``{"_id", "text"}`` per line (extra keys are kept out of the way);
* ``qrels.tsv``: header ``query-id<TAB>corpus-id<TAB>score``, one judgement per line, the
  score an integer gain (``>= 1`` relevant by default, higher is more relevant).

Converters read the published files under ``$ADRECALL_DATASETS`` (default: the
``shared/datasets`` folder beside the repository) and write BEIR folders under
``$ADRECALL_CACHE/eval/<name>`` (default ``~/.cache/adrecall/eval/<name>``), never into the
repository. ``load_eval_dataset(name)`` converts once and reuses the cache while the source
files are unchanged. Missing source data raises ``DatasetMissing`` (a ``FileNotFoundError``)
whose message says where it looked, so tests and benchmarks can skip cleanly.

Available names (``EVAL_DATASETS``):

* ``cranfield``: the full Cranfield 1400 collection, 225 queries. Query ids are the query's
  1-based **position** in ``cran.qry`` (that is what ``cranqrel`` numbers; the ``.I`` ids are
  not sequential and are kept as ``smart_id``). Cleverdon's codes run 1 (complete answer) to
  4 (minimum interest), lower meaning *more* relevant; the gain is ``5 - code`` (1→4, 2→3,
  3→2, 4→1), so every judged pair is relevant and nDCG rewards better codes. Code ``-1`` (one
  line per query, a known artefact) and 5 (no interest) are dropped. Doc text is the ``.W``
  abstract (which repeats the title), the title is kept in ``title``.
* ``qbqtc-v1-pooled``: QBQTC v1 as pooled retrieval: corpus = every unique title of the three
  v1 splits (17,710), queries = the unique queries of dev and test_public (160), qrels = every
  judged (query, title) pair of those splits with gain = label (0/1/2; relevant = label >= 1).
  Titles judged for other queries count as non-relevant: the pool is incomplete.
* ``qbqtc-v1-pooled-test``: the same corpus and qrels with the 91 test_public queries alone,
  for systems whose settings (a fusion weight, the best epoch) were chosen on dev.
* ``qbqtc-v1-rerank``: QBQTC v1 dev + test_public as per-query candidate reranking: corpus =
  the titles of those splits; qrels list **every** candidate of a query, label 0 included, so
  ``candidates(dataset)`` gives the lists to rerank (about 19 per query).
* ``sample-catalogue``: adrecall's own synthetic sample catalogue (``index_build/sample_catalogue``:
  3,000 English and Chinese ads, 44 queries, graded qrels derived from ad categories). It ships
  with the package, so it is read in place and never cached.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from adrecall.checksums import file_sha256
from adrecall.tables import TableError, iter_table_chunks
from retrieval.evaluation import (  # the generic BEIR readers live with `adrecall eval`
    QRELS_HEADER,
    QUERY_ID_KEYS,
    read_jsonl_texts,
    read_qrels,
    read_queries,  # noqa: F401  (re-exported for callers of this module)
)

CONVERTER_VERSION = 1


class DatasetMissing(FileNotFoundError):
    """The source files of a data set are not on this machine; the message says where to put them."""


@dataclass
class EvalDataset:
    """A retrieval evaluation set: corpus, queries and graded qrels, all keyed by string ids.

    ``corpus`` maps doc id to text and ``titles`` doc id to an optional title; ``queries``
    maps query id to text; ``qrels`` maps query id to ``{doc_id: gain}``. Dict order is file
    order, so ``doc_ids()`` gives stable corpus positions.
    """

    name: str
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    titles: dict[str, str] = field(default_factory=dict)
    query_extras: dict[str, dict[str, object]] = field(default_factory=dict)
    info: dict[str, object] = field(default_factory=dict)

    def doc_ids(self) -> list[str]:
        """Doc ids in corpus order (position i of ``doc_texts()`` is ``doc_ids()[i]``)."""
        return list(self.corpus)

    def doc_texts(self, with_title: bool = True) -> list[str]:
        """Searchable text per doc, in corpus order: the title joined before the text unless
        the text already starts with it (Cranfield abstracts repeat their titles)."""
        texts = []
        for doc_id, text in self.corpus.items():
            title = self.titles.get(doc_id, "") if with_title else ""
            if title and not _squash(text).startswith(_squash(title)):
                text = f"{title} {text}".strip()
            texts.append(text)
        return texts

    def validate(self) -> None:
        """Raise ``ValueError`` if the qrels name a query or doc that the set does not hold."""
        unknown_queries = [q for q in self.qrels if q not in self.queries]
        unknown_docs = sorted({d for j in self.qrels.values() for d in j if d not in self.corpus})
        if unknown_queries or unknown_docs:
            raise ValueError(
                f"{self.name}: qrels name {len(unknown_queries)} unknown query id(s) "
                f"{unknown_queries[:5]} and {len(unknown_docs)} unknown doc id(s) "
                f"{unknown_docs[:5]}"
            )

    def stats(self) -> dict[str, int]:
        """Counts: docs, queries, queries with a relevant doc, judged and relevant pairs."""
        return {
            "n_docs": len(self.corpus),
            "n_queries": len(self.queries),
            "n_queries_with_relevant": sum(
                1 for j in self.qrels.values() if any(g >= 1 for g in j.values())
            ),
            "n_judged_pairs": sum(len(j) for j in self.qrels.values()),
            "n_relevant_pairs": sum(1 for j in self.qrels.values() for g in j.values() if g >= 1),
        }


def _squash(text: str) -> str:
    return " ".join(text.split()).lower()


def candidates(dataset: EvalDataset) -> dict[str, list[str]]:
    """Per-query candidate doc ids of a reranking set: every judged doc, in qrels order."""
    return {qid: list(judged) for qid, judged in dataset.qrels.items()}


# ---------------------------------------------------------------- BEIR files


def write_beir(dataset: EvalDataset, folder: str | Path) -> Path:
    """Write ``dataset`` as ``corpus.jsonl``, ``queries.jsonl`` and ``qrels.tsv`` in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as out:
        for doc_id, text in dataset.corpus.items():
            row = {"_id": doc_id, "title": dataset.titles.get(doc_id, ""), "text": text}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as out:
        for qid, text in dataset.queries.items():
            row = {"_id": qid, "text": text, **dataset.query_extras.get(qid, {})}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    write_qrels(dataset.qrels, folder / "qrels.tsv")
    return folder


def write_qrels(qrels: dict[str, dict[str, int]], path: str | Path) -> None:
    """Write qrels as a BEIR ``qrels.tsv`` with its header row."""
    with open(path, "w", encoding="utf-8") as out:
        out.write("\t".join(QRELS_HEADER) + "\n")
        for qid, judged in qrels.items():
            out.writelines(
                f"{_tsv_field(qid)}\t{_tsv_field(doc_id)}\t{int(gain)}\n"
                for doc_id, gain in judged.items()
            )


def _tsv_field(value: str) -> str:
    if any(c in value for c in "\t\n\r"):
        raise ValueError(f"id {value!r} holds a tab or line break and cannot go in a TSV file")
    return value


def read_beir(folder: str | Path, name: str | None = None) -> EvalDataset:
    """Read a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels.tsv``)."""
    folder = Path(folder)
    for part in ("corpus.jsonl", "queries.jsonl", "qrels.tsv"):
        if not (folder / part).is_file():
            raise FileNotFoundError(f"{folder}: no {part}; a BEIR folder needs corpus.jsonl, "
                                    "queries.jsonl and qrels.tsv")
    corpus = read_jsonl_texts(folder / "corpus.jsonl", keep_title=True)
    queries = read_jsonl_texts(folder / "queries.jsonl", id_keys=QUERY_ID_KEYS)
    dataset = EvalDataset(
        name=name or folder.name,
        corpus=corpus.texts,
        queries=queries.texts,
        qrels=read_qrels(folder / "qrels.tsv"),
        titles=corpus.titles,
        query_extras=queries.extras,
    )
    manifest = folder / "manifest.json"
    if manifest.is_file():
        dataset.info = json.loads(manifest.read_text(encoding="utf-8"))
    return dataset


# ---------------------------------------------------------------- locations


def datasets_root() -> Path:
    """Folder of the shared real data sets: ``$ADRECALL_DATASETS`` or ``../shared/datasets``."""
    env = os.environ.get("ADRECALL_DATASETS")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "shared" / "datasets"


def cache_root() -> Path:
    """Where converted sets go: ``$ADRECALL_CACHE/eval`` (default ``~/.cache/adrecall/eval``)."""
    base = os.environ.get("ADRECALL_CACHE") or Path.home() / ".cache" / "adrecall"
    return Path(base).expanduser() / "eval"


def _source_files(folder: Path, names: list[str], dataset: str) -> list[Path]:
    paths = [folder / n for n in names]
    absent = [p for p in paths if not p.is_file()]
    if absent:
        raise DatasetMissing(
            f"{dataset}: source file(s) {[str(p) for p in absent]} not found; set "
            "ADRECALL_DATASETS to the folder holding the shared data sets (see its README.md)"
        )
    return paths


# ---------------------------------------------------------------- Cranfield

_SMART_FIELD = re.compile(r"^\.([ITABW])\b\s*(.*)$")


def _parse_smart(path: Path) -> list[dict[str, str]]:
    """Records of a SMART-format file (``.I id`` then ``.T``/``.A``/``.B``/``.W`` blocks)."""
    records: list[dict[str, str]] = []
    current: dict[str, list[str]] | None = None
    key = None
    with open(path, encoding="ascii") as handle:
        for line_no, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            match = _SMART_FIELD.match(line)
            if match and match.group(1) == "I":
                current = {"I": [match.group(2).strip()]}
                records.append(current)  # type: ignore[arg-type]
                key = None
            elif match:
                if current is None:
                    raise ValueError(f"{path}: line {line_no} comes before the first .I")
                key = match.group(1)
                current[key] = [match.group(2)] if match.group(2) else []
            elif current is not None and key is not None:
                current[key].append(line)
    return [{k: " ".join(" ".join(v).split()) for k, v in r.items()} for r in records]


def convert_cranfield(source: Path | None = None) -> EvalDataset:
    """Cranfield 1400 from ``cran.all.1400``, ``cran.qry`` and ``cranqrel`` (see module doc)."""
    folder = Path(source) if source else datasets_root() / "cranfield"
    docs_path, queries_path, qrels_path = _source_files(
        folder, ["cran.all.1400", "cran.qry", "cranqrel"], "cranfield"
    )
    corpus: dict[str, str] = {}
    titles: dict[str, str] = {}
    for record in _parse_smart(docs_path):
        doc_id = str(int(record["I"]))
        corpus[doc_id] = record.get("W", "")
        if record.get("T"):
            titles[doc_id] = record["T"]
    queries: dict[str, str] = {}
    extras: dict[str, dict[str, object]] = {}
    for position, record in enumerate(_parse_smart(queries_path), start=1):
        queries[str(position)] = record.get("W", "")
        extras[str(position)] = {"smart_id": record["I"]}
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_path, encoding="ascii") as handle:
        for line_no, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3:
                raise ValueError(f"{qrels_path}: line {line_no} is not 'query doc code': {line!r}")
            qid, doc_id, code = str(int(parts[0])), str(int(parts[1])), int(parts[2])
            qrels.setdefault(qid, {})
            if code in (1, 2, 3, 4):
                gain = 5 - code
                qrels[qid][doc_id] = max(gain, qrels[qid].get(doc_id, 0))
            elif code not in (-1, 5):
                raise ValueError(f"{qrels_path}: line {line_no} has unknown code {code}")
    dataset = EvalDataset(
        "cranfield", corpus, queries, qrels, titles=titles, query_extras=extras,
        info={"gain": "5 - Cleverdon code (1->4 ... 4->1); codes -1 and 5 dropped",
              "query_ids": "1-based position in cran.qry (as cranqrel numbers them)"},
    )
    dataset.validate()
    return dataset


# ---------------------------------------------------------------- QBQTC v1

_QBQTC_SPLITS = ("train", "dev", "test_public")
_QBQTC_COLUMNS = ["query", "title", "relevant"]


def _qbqtc_rows(folder: Path, split: str) -> list[tuple[str, str, int]]:
    # QBQTC's ``.json`` files are JSON lines; adrecall.tables only knows the ``.jsonl`` suffix.
    path = folder / f"{split}.json"
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                query, title, label = (row[c] for c in _QBQTC_COLUMNS)
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise TableError(
                    f"{path}: line {line_no} is not a JSON object with keys {_QBQTC_COLUMNS}"
                ) from exc
            if str(label) not in ("0", "1", "2"):
                raise TableError(f"{path}: line {line_no} has label {label!r}, not 0/1/2")
            rows.append((str(query).strip(), str(title).strip(), int(label)))
    return rows


def _qbqtc(
    name: str, source: Path | None, corpus_splits: tuple[str, ...], query_splits: tuple[str, ...]
) -> EvalDataset:
    folder = Path(source) if source else datasets_root() / "qbqtc" / "v1"
    _source_files(folder, [f"{s}.json" for s in corpus_splits], name)
    rows = {split: _qbqtc_rows(folder, split) for split in corpus_splits}
    title_ids: dict[str, str] = {}
    for split in corpus_splits:
        for _, title, _ in rows[split]:
            if title not in title_ids:
                title_ids[title] = f"t{len(title_ids):05d}"
    query_ids: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for split in query_splits:
        for query, title, label in rows[split]:
            qid = query_ids.setdefault(query, f"q{len(query_ids):04d}")
            judged = qrels.setdefault(qid, {})
            doc_id = title_ids[title]
            if doc_id in judged and judged[doc_id] != label:
                raise ValueError(f"{name}: ({query!r}, {title!r}) has labels {judged[doc_id]} "
                                 f"and {label}")
            judged[doc_id] = label
    dataset = EvalDataset(
        name,
        corpus={doc_id: title for title, doc_id in title_ids.items()},
        queries={qid: query for query, qid in query_ids.items()},
        qrels=qrels,
        info={"gain": "QBQTC label (0/1/2); relevant = label >= 1",
              "corpus_splits": list(corpus_splits), "query_splits": list(query_splits)},
    )
    dataset.validate()
    return dataset


def convert_qbqtc_pooled(source: Path | None = None) -> EvalDataset:
    """QBQTC v1 pooled retrieval: all 17,710 v1 titles, dev + test_public queries."""
    return _qbqtc("qbqtc-v1-pooled", source, _QBQTC_SPLITS, ("dev", "test_public"))


def convert_qbqtc_pooled_test(source: Path | None = None) -> EvalDataset:
    """QBQTC v1 pooled retrieval over all 17,710 v1 titles with the test_public queries only
    (91): for systems whose settings were chosen on dev."""
    return _qbqtc("qbqtc-v1-pooled-test", source, _QBQTC_SPLITS, ("test_public",))


def convert_qbqtc_rerank(source: Path | None = None) -> EvalDataset:
    """QBQTC v1 dev + test_public as per-query candidate reranking (qrels = candidates)."""
    return _qbqtc("qbqtc-v1-rerank", source, ("dev", "test_public"), ("dev", "test_public"))


# ---------------------------------------------------------------- sample catalogue


def convert_sample_catalogue(source: Path | None = None) -> EvalDataset:
    """The sample catalogue shipped in ``index_build`` (or the same three files in ``source``)."""
    from index_build.sample import sample_catalogue_dir

    folder = Path(source) if source else sample_catalogue_dir()
    ads_path, queries_path, qrels_path = _source_files(
        folder, ["ads.csv", "queries.jsonl", "qrels.tsv"], "sample-catalogue"
    )
    corpus: dict[str, str] = {}
    for chunk in iter_table_chunks(ads_path, chunk_rows=50_000, columns=["ad_id", "text"]):
        corpus.update(zip(chunk["ad_id"], chunk["text"]))
    queries = read_jsonl_texts(queries_path, id_keys=QUERY_ID_KEYS)
    dataset = EvalDataset(
        "sample-catalogue", corpus, queries.texts, read_qrels(qrels_path),
        query_extras=queries.extras,
        info={"gain": "2 = the ad's category is what the query asks for, 1 = related category",
              "source": "synthetic, written by index_build/sample_catalogue/make_catalogue.py"},
    )
    dataset.validate()
    return dataset


# ---------------------------------------------------------------- cache

_SOURCES: dict[str, tuple[str, list[str]]] = {
    "cranfield": ("cranfield", ["cran.all.1400", "cran.qry", "cranqrel"]),
    "qbqtc-v1-pooled": ("qbqtc/v1", [f"{s}.json" for s in _QBQTC_SPLITS]),
    "qbqtc-v1-pooled-test": ("qbqtc/v1", [f"{s}.json" for s in _QBQTC_SPLITS]),
    "qbqtc-v1-rerank": ("qbqtc/v1", ["dev.json", "test_public.json"]),
}
EVAL_DATASETS: dict[str, Callable[[Path | None], EvalDataset]] = {
    "cranfield": convert_cranfield,
    "qbqtc-v1-pooled": convert_qbqtc_pooled,
    "qbqtc-v1-pooled-test": convert_qbqtc_pooled_test,
    "qbqtc-v1-rerank": convert_qbqtc_rerank,
    "sample-catalogue": convert_sample_catalogue,
}


def load_eval_dataset(name: str, refresh: bool = False) -> EvalDataset:
    """The named set (see ``EVAL_DATASETS``), converted into the cache on first use.

    The cache is rebuilt when ``refresh`` is true, the converter changed, or a source file's
    SHA-256 differs from the one recorded in the cached ``manifest.json``.
    """
    if name not in EVAL_DATASETS:
        raise ValueError(f"unknown evaluation set {name!r}; choose one of {sorted(EVAL_DATASETS)}")
    if name not in _SOURCES:  # ships with the package: read in place
        return EVAL_DATASETS[name](None)
    subdir, files = _SOURCES[name]
    paths = _source_files(datasets_root() / subdir, files, name)
    manifest = {
        "name": name,
        "converter_version": CONVERTER_VERSION,
        "sources": {str(p): file_sha256(p) for p in paths},
    }
    folder = cache_root() / name
    cached = folder / "manifest.json"
    if not refresh and cached.is_file():
        recorded = json.loads(cached.read_text(encoding="utf-8"))
        if all(recorded.get(k) == v for k, v in manifest.items()):
            return read_beir(folder, name)
    dataset = EVAL_DATASETS[name](datasets_root() / subdir)
    manifest.update(dataset.info)
    manifest["stats"] = dataset.stats()
    write_beir(dataset, folder)
    (folder / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    dataset.info = manifest
    return dataset
