"""Batch jobs of adrecall: read ad tables in chunks, embed them, write index directories."""

import adrecall  # noqa: F401  (first: idle OpenMP threads sleep; adrecall.idle_threads)
from index_build.ad_source import AdSource, AdSourceError
from index_build.build_job import BuildSummary, build_index
from index_build.compaction import CompactSummary, compact_index
from index_build.index_update import UpdateSummary, update_index

__all__ = ["AdSource", "AdSourceError", "BuildSummary", "CompactSummary", "UpdateSummary",
           "build_index", "compact_index", "update_index"]
