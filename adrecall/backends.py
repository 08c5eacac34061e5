"""Inference back-ends: which engine runs a transformer on the CPU, and which ones this machine has.

* ``torch``: PyTorch in fp32, the reference every other back-end is checked against.
* ``torch-bf16``: PyTorch under bf16 autocast (the AMX / AVX-512 BF16 matrix units).
* ``openvino``: the model exported to ONNX once (:mod:`adrecall.onnx_export`) and compiled by
  OpenVINO with bf16 inference precision; ``pip install 'adrecall[openvino]'``.
* ``onnx``: the same export run by onnxruntime in fp32; ``pip install 'adrecall[onnx]'``.
* ``auto``: the fastest of these that the machine has and that passes a fidelity check against
  fp32 (:mod:`adrecall.backend_choice`).

Only inference uses a back-end; training always runs in PyTorch. No import here loads torch.
"""

from __future__ import annotations

import importlib.util
import os
from functools import cache
from pathlib import Path

from adrecall.settings_checks import check_choice

BACKENDS = ("auto", "torch", "torch-bf16", "openvino", "onnx")
"""What ``--backend`` and every ``backend=`` keyword accept."""

AUTO_ORDER = ("openvino", "torch-bf16", "torch")
"""``auto``'s preference, fastest first, ending with the fp32 reference (benchmarks/results/speed.md). ``onnx`` (onnxruntime
fp32) is no faster than torch fp32 on these CPUs, so ``auto`` never picks it."""

_MODULES = {"openvino": "openvino", "onnx": "onnxruntime"}
"""The Python package each exported back-end runs on; the pip extra has the back-end's name."""


class BackendUnavailable(ImportError):
    """A back-end asked for by name cannot run on this machine; the message says how to fix it."""


def check_backend(backend: str) -> str:
    """``backend`` if it is one of :data:`BACKENDS`, else ``ValueError`` naming the choices."""
    return check_choice("backend", backend, BACKENDS)


def missing_reason(backend: str) -> str | None:
    """Why ``backend`` cannot run here (its package is not installed), or ``None`` when it can."""
    module = _MODULES.get(backend)
    if module is not None and importlib.util.find_spec(module) is None:
        return (f"backend {backend!r} needs the {module} package, which is not installed; "
                f"pip install 'adrecall[{backend}]'")
    return None


def auto_skip_reason(backend: str) -> str | None:
    """Why ``auto`` passes ``backend`` over without trying it: a missing package, or bf16 on a
    CPU without bf16 units (it would be emulated, slower than fp32; asked for by name it runs)."""
    if backend == "torch-bf16" and not cpu_has_bf16():
        return "this CPU has no bf16 matrix units (AVX-512 BF16 or AMX)"
    return missing_reason(backend)


def torch_backend(precision: str) -> str:
    """The PyTorch back-end that scores as training ran: ``torch-bf16`` for ``"bf16"``."""
    return "torch-bf16" if precision == "bf16" else "torch"


def require(backend: str) -> None:
    """Raise :class:`BackendUnavailable` when ``backend`` cannot run on this machine."""
    reason = missing_reason(check_backend(backend))
    if reason is not None:
        raise BackendUnavailable(reason)


@cache
def cpu_has_bf16() -> bool:
    """Whether the CPU computes bf16 natively (Linux's ``avx512_bf16`` or ``amx_bf16`` flag)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def export_cache_root() -> Path:
    """Where exported models live: ``$ADRECALL_CACHE_DIR/exports``, else
    ``~/.cache/adrecall/exports``. Not inside the model folder: a file added there would change
    the folder's weight hash (an index's record of its model) and its checksummed contents."""
    base = os.environ.get("ADRECALL_CACHE_DIR") or str(Path.home() / ".cache" / "adrecall")
    return Path(base) / "exports"
