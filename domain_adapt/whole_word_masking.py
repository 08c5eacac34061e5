"""Whole word masking for masked language modelling, with dynamic masks per batch.

Words are found from the token strings: a WordPiece continuation (``##…``) belongs to the word
before it, and a run of CJK tokens is cut into words by jieba (Chinese BERT-wwm does the same
with its segmenter), so the two characters of 北京 are masked together. Per sequence, 15% of
its words (at least one) are chosen; each chosen word has all of its tokens replaced by
[MASK] (80%), by random tokens (10%) or left as they are (10%), decided once per word; labels
hold the original ids at the chosen tokens and -100 everywhere else. Masks are drawn anew for
every batch (dynamic masking, as in RoBERTa) from a generator the caller may seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from adrecall.wobert import cut_words, is_cjk_word

IGNORE_INDEX = -100


def word_ids_for_tokens(tokens: Sequence[str], special: Sequence[bool] | None = None) -> list[int]:
    """Word number of each token (0, 1, ...), or -1 for special tokens.

    ``special`` marks special tokens ([CLS], [SEP], padding); by default none are.
    """
    special = list(special) if special is not None else [False] * len(tokens)
    if len(special) != len(tokens):
        raise ValueError(f"{len(tokens)} tokens but {len(special)} special flags")
    word_ids = [-1] * len(tokens)
    word = -1
    i = 0
    while i < len(tokens):
        if special[i]:
            i += 1
            continue
        token = tokens[i]
        if is_cjk_word(token):
            j = i
            while j < len(tokens) and not special[j] and is_cjk_word(tokens[j]):
                j += 1
            run = tokens[i:j]
            boundaries = _jieba_boundaries("".join(run))
            offset = 0
            for k, piece in enumerate(run):
                if offset in boundaries or k == 0:
                    word += 1
                word_ids[i + k] = word
                offset += len(piece)
            i = j
            continue
        if not (token.startswith("##") and i > 0 and word_ids[i - 1] >= 0):
            word += 1
        word_ids[i] = word
        i += 1
    return word_ids


def _jieba_boundaries(text: str) -> set[int]:
    boundaries = {0}
    offset = 0
    for word in cut_words(text):
        offset += len(word)
        boundaries.add(offset)
    return boundaries


def encode_for_mlm(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[dict]:
    """Tokenise texts (with special tokens, truncated) and attach their word ids."""
    if not texts:
        return []
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, add_special_tokens=True)
    specials = set(tokenizer.all_special_ids)
    examples = []
    for ids in enc["input_ids"]:
        tokens = tokenizer.convert_ids_to_tokens(ids)
        examples.append(
            {"input_ids": list(ids), "word_ids": word_ids_for_tokens(tokens, [i in specials for i in ids])}
        )
    return examples


class WholeWordMaskCollator:
    """Pads examples (``input_ids`` + ``word_ids``) into a batch and masks whole words.

    ``collator(examples, generator)`` returns ``input_ids``, ``attention_mask``,
    ``token_type_ids`` and ``labels`` tensors; the same generator state gives the same masks.
    """

    def __init__(
        self,
        tokenizer: Any,
        mlm_probability: float = 0.15,
        mask_fraction: float = 0.8,
        random_fraction: float = 0.1,
    ) -> None:
        if not 0 < mlm_probability < 1:
            raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability!r}")
        if mask_fraction < 0 or random_fraction < 0 or mask_fraction + random_fraction > 1:
            raise ValueError(
                f"mask_fraction ({mask_fraction!r}) and random_fraction ({random_fraction!r}) "
                "must be >= 0 and sum to at most 1"
            )
        if tokenizer.mask_token_id is None:
            raise ValueError(f"{type(tokenizer).__name__} has no [MASK] token; MLM needs one")
        self.mlm_probability = mlm_probability
        self.mask_fraction = mask_fraction
        self.random_fraction = random_fraction
        self.mask_id = int(tokenizer.mask_token_id)
        self.pad_id = int(tokenizer.pad_token_id or 0)
        specials = set(tokenizer.all_special_ids)
        vocab_size = len(tokenizer.get_vocab())
        self.random_ids = torch.tensor([i for i in range(vocab_size) if i not in specials])

    def mask_words(
        self, input_ids: Sequence[int], word_ids: Sequence[int], generator: torch.Generator | None = None
    ) -> tuple[list[int], list[int]]:
        """Masked ids and labels for one sequence."""
        if len(input_ids) != len(word_ids):
            raise ValueError(f"{len(input_ids)} input ids but {len(word_ids)} word ids")
        words = sorted({w for w in word_ids if w >= 0})
        masked = list(input_ids)
        labels = [IGNORE_INDEX] * len(input_ids)
        if not words:
            return masked, labels
        count = max(1, round(len(words) * self.mlm_probability))
        order = torch.randperm(len(words), generator=generator)[:count].tolist()
        chosen = {words[i]: None for i in order}
        actions = torch.rand(len(chosen), generator=generator).tolist()
        action_of = dict(zip(chosen, actions))
        for pos, w in enumerate(word_ids):
            if w in action_of:
                labels[pos] = int(input_ids[pos])
                u = action_of[w]
                if u < self.mask_fraction:
                    masked[pos] = self.mask_id
                elif u < self.mask_fraction + self.random_fraction:
                    pick = int(torch.randint(len(self.random_ids), (1,), generator=generator))
                    masked[pos] = int(self.random_ids[pick])
        return masked, labels

    def __call__(
        self, examples: Sequence[dict], generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        if not examples:
            raise ValueError("cannot collate an empty batch")
        width = max(len(e["input_ids"]) for e in examples)
        n = len(examples)
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        labels = torch.full((n, width), IGNORE_INDEX, dtype=torch.long)
        attention = torch.zeros((n, width), dtype=torch.long)
        for row, example in enumerate(examples):
            masked, lab = self.mask_words(example["input_ids"], example["word_ids"], generator)
            length = len(masked)
            input_ids[row, :length] = torch.tensor(masked, dtype=torch.long)
            labels[row, :length] = torch.tensor(lab, dtype=torch.long)
            attention[row, :length] = 1
        return {
            "input_ids": input_ids,
            "attention_mask": attention,
            "token_type_ids": torch.zeros_like(input_ids),
            "labels": labels,
        }
