"""adrecall: find the ads whose meaning matches a search query.

This package holds what the three working packages share (text normalisation, table reading,
model locations) and the ``adrecall`` command line. ``retrieval``, ``rerank`` and
``index_build`` hold the work itself. ``Client`` (the client of ``adrecall serve``) is
exported here lazily: ``import adrecall`` stays cheap.
"""

from adrecall.idle_threads import quiet_idle_threads
from adrecall.lazy_exports import lazy_exports

__version__ = "0.1.0"

quiet_idle_threads()  # before torch or faiss loads: see adrecall.idle_threads

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {"service.client": ("Client", "RerankHit", "RequestRejected", "SearchHit", "ServiceError",
                        "ServiceUnavailable")},
    defined_here=("__version__",),
)
