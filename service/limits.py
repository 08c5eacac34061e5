"""Request limits of the service: how many texts, how long, how many hits, how many bytes.

A request over a limit is refused with a 4xx that names the limit and the server option that
raises it, before any model work: one client cannot make the server tokenise megabytes or
return the whole index.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from service.errors import Rejected


@dataclass(frozen=True)
class Limits:
    """Per-request limits (``adrecall serve --max-texts/--max-text-chars/--max-k/--max-queue``)."""

    max_texts: int = 256
    max_text_chars: int = 4096
    max_k: int = 1000
    max_queue: int = 1024
    """Requests waiting for the model at once; more get 429 (retry later)."""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    @property
    def max_body_bytes(self) -> int:
        """The largest request body read: every text at its longest in 4-byte UTF-8, JSON
        escaping (up to 6 bytes a character) included, plus room for the other fields."""
        return self.max_texts * (self.max_text_chars * 6 + 16) + 65_536

    def check_texts(self, texts: list[str], field: str) -> None:
        """Refuse more than ``max_texts`` texts or a text over ``max_text_chars`` characters."""
        if len(texts) > self.max_texts:
            raise Rejected(
                413, f"{field} holds {len(texts)} texts; at most {self.max_texts} per request "
                f"(split the request, or start the server with --max-texts {len(texts)})", field)
        for row, text in enumerate(texts):
            if len(text) > self.max_text_chars:
                raise Rejected(
                    413, f"{field}[{row}] is {len(text)} characters long; at most "
                    f"{self.max_text_chars} (the model reads only its first few hundred tokens "
                    "anyway: cut the text, or start the server with --max-text-chars)",
                    f"{field}[{row}]")

    def check_k(self, k: int) -> None:
        """Refuse ``k`` above ``max_k`` (``k >= 1`` is checked by the request schema)."""
        if k > self.max_k:
            raise Rejected(422, f"k is {k}; at most {self.max_k} hits per query (ask for fewer, "
                           "or start the server with --max-k)", "k")
