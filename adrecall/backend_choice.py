"""``backend="auto"``: the fastest back-end this machine has that agrees with fp32.

Back-ends are tried in :data:`adrecall.backends.AUTO_ORDER`. One whose package is missing, or
that fails to export or compile, is skipped; one that loads is run on :data:`PROBE_TEXTS` beside
PyTorch fp32, and kept only if it agrees (the caller says how: cosine of vectors for the
encoder, score difference for BertSim). PyTorch fp32 is the reference and always qualifies.
The :class:`BackendChoice` says what was picked, why, and what was passed over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from adrecall.backends import AUTO_ORDER, auto_skip_reason, check_backend

PROBE_TEXTS = (
    "cheap flights to Tokyo",
    "Learn Spanish online with native teachers, first lesson free",
    "brake pads replaced while you wait",
    "孩子学编程，周末少儿编程班",
    "running shoes",
    ("Family dentist: check-ups, cleaning and whitening; evening appointments; most insurance "
     "plans accepted; call today to book your first visit"),
    "二手车 评估 免费上门",
    "x",
)
"""Short and long, English and Chinese: where a low-precision back-end would drift first."""

Runner = TypeVar("Runner")


@dataclass(frozen=True)
class BackendChoice:
    """What ran: ``backend``; what was asked: ``requested``; ``agreement`` with fp32 on the
    probe (``auto`` only); ``passed_over``: back-ends ``auto`` skipped, each with its reason."""

    backend: str
    requested: str
    agreement: str | None = None
    passed_over: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for a person, e.g. ``openvino (auto; min cosine 0.99998 to fp32 ...)``."""
        if self.requested != "auto":
            return self.backend
        parts = [f"auto; {self.agreement}" if self.agreement else "auto",
                 *(f"skipped {reason}" for reason in self.passed_over)]
        return f"{self.backend} ({'; '.join(parts)})"

    def to_dict(self) -> dict[str, object]:
        return {"backend": self.backend, "requested": self.requested,
                "agreement": self.agreement, "passed_over": list(self.passed_over)}


def choose_backend(
    requested: str,
    make: Callable[[str], Runner],
    agrees: Callable[[Runner], tuple[bool, str]],
) -> tuple[Runner, BackendChoice]:
    """``make(backend)`` for ``requested``, or for ``auto`` the first back-end in order whose
    runner loads and ``agrees(runner)`` with fp32 (``(ok, measured)``)."""
    if check_backend(requested) != "auto":
        return make(requested), BackendChoice(requested, requested)
    passed_over = []
    *candidates, reference = AUTO_ORDER
    for backend in candidates:
        reason = auto_skip_reason(backend)
        if reason is not None:
            passed_over.append(f"{backend}: {reason}")
            continue
        try:
            runner = make(backend)
        except Exception as exc:  # noqa: BLE001  a failed export or compile: fall back, say why
            passed_over.append(f"{backend}: failed to load ({type(exc).__name__}: {exc})")
            continue
        ok, measured = agrees(runner)
        if ok:
            return runner, BackendChoice(backend, "auto", measured, tuple(passed_over))
        passed_over.append(f"{backend}: disagrees with fp32 ({measured})")
    return make(reference), BackendChoice(reference, "auto", None, tuple(passed_over))
