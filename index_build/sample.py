"""Locations of the sample catalogue shipped with the package (demo and unit-test data).

The files are written by ``index_build/sample_catalogue/make_catalogue.py``: ``ads.csv`` (about
3,000 English and Chinese ads), ``queries.jsonl`` (user-style searches) and ``qrels.tsv``
(BEIR-style graded relevance, 2 = highly relevant, 1 = somewhat relevant).
"""

from __future__ import annotations

from pathlib import Path


def sample_catalogue_dir() -> Path:
    """Folder holding the sample catalogue files and their generator."""
    return Path(__file__).parent / "sample_catalogue"


def sample_ads_path() -> Path:
    """``ads.csv``: columns ad_id, text, industry, category, language, advertiser."""
    return sample_catalogue_dir() / "ads.csv"


def sample_queries_path() -> Path:
    """``queries.jsonl``: one ``{"query_id", "text", "language"}`` object per line."""
    return sample_catalogue_dir() / "queries.jsonl"


def sample_qrels_path() -> Path:
    """``qrels.tsv``: header ``query_id, ad_id, score``, tab-separated, scores 1 or 2."""
    return sample_catalogue_dir() / "qrels.tsv"
