"""Names a package exports without importing the modules that define them until first use.

The working packages (``domain_adapt``, ``encoder_training``, ``rerank``) export classes and
functions whose modules import torch; importing them eagerly would make ``adrecall --help``
slow. Each package's ``__init__`` hands its table of names to :func:`lazy_exports` and binds
the public names and the two module hooks it returns (PEP 562):

    __all__, __getattr__, __dir__ = lazy_exports(__name__, {"rerank.model": ("BertSim",)})

The table is the one place a package lists what it exports.

The first access imports the defining module and caches the value in the package, so later
accesses are ordinary attribute look-ups.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, Iterable[str]], *, defined_here: Iterable[str] = ()
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` of ``package``, exporting ``exports`` lazily.

    ``exports`` maps each defining module to the names it gives the package;
    ``defined_here`` names the package's own public attributes, which join ``__all__``.
    """
    module_of = {name: module for module, names in exports.items() for name in names}
    public = sorted({*defined_here, *module_of})
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_of[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return list(public)

    return list(public), __getattr__, __dir__
