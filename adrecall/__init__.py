"""adrecall: find the ads whose meaning matches a search query.

This package holds what the three working packages share (text normalisation, table reading,
model locations) and the ``adrecall`` command line. ``retrieval``, ``rerank`` and
``index_build`` hold the work itself.
"""

__version__ = "0.1.0"
