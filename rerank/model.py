"""BertSim: a BERT cross-encoder that reads a query and an ad together and scores relevance.

Architecture (DESIGN.md): encoder → pooled vector → Dropout(0.1) → Linear(H, 256) → Tanh →
Dropout(0.1) → Linear(256, 1). The output is a relevance score on the project's scale
``SCORE_MIN..SCORE_MAX`` (0 unrelated, 1 somewhat, 2 highly relevant): training maps each data
set's declared label scale onto it, and the model regresses that number directly (MSE), so
``score()`` needs no rescaling. Scores are not clipped: a score of 2.1 still ranks above 2.0.

Pooling ("pooled output"): ``"pooler"`` uses BERT's pooler (tanh(W·h_CLS + b)), ``"cls"`` uses
the [CLS] hidden state itself. ``"auto"`` picks ``"pooler"`` only when the checkpoint holds
*trained* pooler weights (present and with a non-zero bias); otherwise ``"cls"``. The embedded
all-MiniLM-L6-v2 ships pooler weights that were never trained (bias exactly zero, distillation
and sentence training never touch them), so it gets ``"cls"``; a BERT pre-trained with NSP (e.g.
chinese-roberta-wwm-ext) gets its pooler. The resolved choice is recorded in the manifest.

On disk (one folder): ``config.json`` + ``model.safetensors`` (encoder), tokenizer files,
``head.safetensors`` and ``manifest.json`` (an adrecall ``bertsim``: settings and the SHA-256 of
every file, written last). Loading refuses a folder whose files fail their checksums, and reads
safetensors and JSON only: nothing is ever unpickled.

Inference after :meth:`BertSim.load` runs the encoder on the chosen back-end
(:mod:`adrecall.backends`; ``auto``: the fastest that agrees with fp32 on probe pairs); the
pooling and the small head stay in PyTorch fp32. Training always runs in PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from adrecall.backend_choice import PROBE_TEXTS, BackendChoice, choose_backend
from adrecall.folders import BERTSIM, mark_unfinished, read_manifest, verify_folder, write_manifest
from adrecall.model_loading import (
    encoder_dir,
    load_hf_encoder,
    load_tokenizer,
    pooler_kwargs,
    quiet_transformers,
)
from adrecall.model_runner import ModelRunner
from adrecall.models import model_label, resolve_model_dir
from adrecall.resume_checkpoint import CHECKPOINT_NAMES
from adrecall.settings_checks import check_precision
from adrecall.textnorm import model_text
from rerank.encoder import (
    check_max_length,
    load_state,
    resolve_pooling,
    uses_token_types,
)

SCORE_MIN = 0.0
SCORE_MAX = 2.0
HEAD_INNER = 256
HEAD_DROPOUT = 0.1
MANIFEST_FORMAT = "adrecall-bertsim"
MANIFEST_VERSION = 2
"""2: the manifest records ``kind`` and every file's checksum (1 had neither)."""
_HEAD_FILE = "head.safetensors"
MAX_PROBE_SCORE_GAP = 0.05
"""``auto`` keeps a back-end whose probe-pair scores are all within this of fp32's (on the
0–2 scale; bf16 differs by about 0.005)."""


class BertSimHead(nn.Module):
    """Dropout → Linear(H, 256) → Tanh → Dropout → Linear(256, 1), one score per pooled vector."""

    def __init__(self, hidden_size: int, inner: int = HEAD_INNER, dropout: float = HEAD_DROPOUT):
        super().__init__()
        self.dropout1 = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, inner)
        self.activation = nn.Tanh()
        self.dropout2 = nn.Dropout(dropout)
        self.out = nn.Linear(inner, 1)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        x = self.activation(self.dense(self.dropout1(pooled)))
        return self.out(self.dropout2(x)).squeeze(-1)


@dataclass(frozen=True)
class EncodedPairs:
    """Tokenised (query, ad) pairs, unpadded: one list of token ids per pair."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self))


class BertSim(nn.Module):
    """Cross-encoder for (query, ad) relevance; ``score``/``rank`` are the user-facing calls.

    Build a fresh one with :meth:`from_encoder` (training does this), load a trained one with
    :meth:`load`. ``precision`` (``"fp32"`` or ``"bf16"`` autocast) is what training runs
    in, and scoring too until :meth:`use_backend` (which :meth:`load` calls) picks a back-end;
    ``batch_size`` only affects inference speed and may be changed on a loaded model.
    """

    def __init__(
        self,
        encoder: nn.Module,
        tokenizer: Any,
        *,
        pooling: str,
        max_length: int | None = 256,
        normalize: bool = True,
        manifest: dict | None = None,
        precision: str = "fp32",
        batch_size: int = 64,
    ):
        super().__init__()
        if pooling not in ("pooler", "cls", "mean"):
            raise ValueError(
                f"pooling must be 'pooler', 'cls' or 'mean' once resolved, got {pooling!r}"
            )
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.head = BertSimHead(int(encoder.config.hidden_size))
        self.pooling = pooling
        self.max_length = check_max_length(max_length, encoder, tokenizer)
        self.normalize = bool(normalize)
        self.manifest: dict = dict(manifest or {})
        self.precision = precision
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self._runner: ModelRunner | None = None
        self.backend_choice: BackendChoice | None = None

    def use_backend(self, backend: str = "auto", *, threads: int | None = None) -> BackendChoice:
        """Score with ``backend`` from now on (``auto``: the fastest that agrees with fp32 on
        probe pairs); returns what was chosen and why."""
        self.eval()
        self._runner, self.backend_choice = choose_backend(
            backend, lambda name: self._make_runner(name, threads), self._agrees_with_fp32)
        return self.backend_choice

    def _make_runner(self, backend: str, threads: int | None) -> ModelRunner:
        names = ["input_ids", "attention_mask"] + (
            ["token_type_ids"] if uses_token_types(self.encoder) else [])
        outputs = ["last_hidden_state"] + (["pooler_output"] if self.pooling == "pooler" else [])
        weights = self.manifest.get("files", {}).get("model.safetensors") or _weights_digest(self)
        return ModelRunner(self.encoder, backend, weights_sha256=weights, input_names=names,
                           output_names=outputs, threads=threads)

    def _agrees_with_fp32(self, runner: ModelRunner) -> tuple[bool, str]:
        queries = [PROBE_TEXTS[i] for i in range(len(PROBE_TEXTS)) for _ in range(2)]
        texts = [PROBE_TEXTS[(i + j) % len(PROBE_TEXTS)] for i in range(len(PROBE_TEXTS))
                 for j in (0, 3)]
        batch = self.collate(self.encode_pairs(queries, texts), range(len(texts)))
        gap = float((self.infer(batch, runner) - self.infer(batch, self._make_runner("torch", None)))
                    .abs().max())
        return gap <= MAX_PROBE_SCORE_GAP, (
            f"max score gap {gap:.4f} to fp32 on {len(texts)} probe pairs")

    def infer(self, batch: dict[str, torch.Tensor],
              runner: ModelRunner | None = None) -> torch.Tensor:
        """Scores (float32, ``[batch]``) of a padded batch for inference: the encoder on
        ``runner`` (default: the chosen back-end), else :meth:`forward` under ``precision``."""
        from adrecall.precision import autocast

        runner = runner or self._runner
        with torch.inference_mode():
            if runner is None:
                with autocast(self.precision):
                    return self(**batch).float()
            out = runner(batch)
            return self.head(self._pool(out["last_hidden_state"], out.get("pooler_output"),
                                        batch["attention_mask"])).float()

    @property
    def fusion_weight(self) -> float | None:
        """Weight of first-stage scores in the fused order, chosen on dev when the model was
        trained with its first stage (``--index``); ``None`` otherwise."""
        fusion = self.manifest.get("fusion")
        return float(fusion["weight"]) if fusion else None

    @property
    def precision(self) -> str:
        """``"fp32"`` or ``"bf16"`` (CPU autocast) for scoring; may be changed at any time."""
        return self._precision

    @precision.setter
    def precision(self, value: str) -> None:
        self._precision = check_precision(value)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_encoder(
        cls,
        model: str | Path | None = None,
        *,
        pooling: str = "auto",
        max_length: int | None = 256,
        normalize: bool = True,
        seed: int | None = 0,
        precision: str = "fp32",
    ) -> BertSim:
        """A new BertSim on a local encoder (``None``/``"default"``: the embedded MiniLM-L6).

        The head is freshly initialised (seeded by ``seed`` when given); train it before use.
        """
        model_dir = resolve_model_dir(model)
        enc_dir = encoder_dir(model_dir)
        resolved = resolve_pooling(pooling, enc_dir)
        if seed is not None:
            torch.manual_seed(seed)
        encoder = load_hf_encoder(enc_dir, with_pooler=resolved == "pooler")
        tokenizer = load_tokenizer(enc_dir)
        manifest = {
            "encoder": {
                "source": model_label(model),
                "source_dir": str(enc_dir),
                "architecture": type(encoder).__name__,
                "hidden_size": int(encoder.config.hidden_size),
                "pooling": resolved,
                "pooling_requested": pooling,
                "pooling_rule": "auto = pooler only if the checkpoint has trained pooler "
                "weights (non-zero bias), else the [CLS] hidden state",
            }
        }
        return cls(
            encoder,
            tokenizer,
            pooling=resolved,
            max_length=max_length,
            normalize=normalize,
            manifest=manifest,
            precision=precision,
        )

    @classmethod
    def load(cls, path: str | Path, *, backend: str = "auto", batch_size: int = 64,
             threads: int | None = None) -> BertSim:
        """Load a saved BertSim folder (safetensors and JSON only; nothing is unpickled), after
        checking every file against the checksums in its manifest, to score on ``backend``
        (:meth:`use_backend`)."""
        from transformers import AutoConfig, AutoModel

        path = Path(path)
        manifest = read_manifest(path)
        if manifest is None:
            raise FileNotFoundError(
                f"{str(path)!r} is not a saved BertSim model (no adrecall manifest.json); "
                "train one with `adrecall train-reranker` or BertSim.save()"
            )
        if manifest["kind"] != BERTSIM:
            raise ValueError(
                f"{str(path)!r} holds an adrecall {manifest['kind']}, not a BertSim; pass the "
                "folder `adrecall train-reranker` wrote"
            )
        if int(manifest.get("format_version", 0)) > MANIFEST_VERSION:
            raise ValueError(
                f"{path / 'manifest.json'}: format_version {manifest['format_version']} is newer "
                f"than this adrecall understands ({MANIFEST_VERSION}); upgrade adrecall"
            )
        verify_folder(path)
        pooling = manifest["encoder"]["pooling"]
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
        with quiet_transformers():
            encoder = AutoModel.from_config(config, **pooler_kwargs(config, pooling == "pooler"))
        weights = load_file(str(path / "model.safetensors"))
        load_state(encoder, weights, path / "model.safetensors")
        tokenizer = load_tokenizer(path)
        model = cls(
            encoder,
            tokenizer,
            pooling=pooling,
            max_length=int(manifest["max_length"]),
            normalize=bool(manifest["normalize"]),
            manifest=manifest,
            batch_size=batch_size,
        )
        model.head.load_state_dict(load_file(str(path / _HEAD_FILE)))
        model.use_backend(backend, threads=threads)
        return model

    def save(self, path: str | Path, extra_manifest: dict | None = None) -> Path:
        """Write the model folder: encoder, tokenizer, head (safetensors) and ``manifest.json``.

        The folder is marked unfinished before the first file and the manifest, with every
        file's checksum (resume checkpoints left out), is written last: :meth:`load` refuses a
        folder whose save was cut short.
        """
        import transformers

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        mark_unfinished(path, BERTSIM)
        kwargs = {} if int(transformers.__version__.split(".")[0]) >= 5 else {
            "safe_serialization": True
        }
        with quiet_transformers():
            self.encoder.save_pretrained(str(path), **kwargs)
        self.tokenizer.save_pretrained(str(path))
        head_state = {k: v.detach().contiguous().cpu() for k, v in self.head.state_dict().items()}
        save_file(head_state, str(path / _HEAD_FILE))
        self.manifest = write_manifest(
            path, BERTSIM, self._manifest(extra_manifest), skip=CHECKPOINT_NAMES
        )
        return path

    def _manifest(self, extra: dict | None) -> dict:
        manifest = dict(self.manifest)
        manifest.update(extra or {})
        manifest.update(
            {
                "format": MANIFEST_FORMAT,
                "format_version": MANIFEST_VERSION,
                "max_length": self.max_length,
                "normalize": self.normalize,
                "normalization": "adrecall.textnorm.normalize_text" if self.normalize else None,
                "score_scale": {"min": SCORE_MIN, "max": SCORE_MAX},
                "head": {
                    "layers": "Dropout(0.1) -> Linear(H, 256) -> Tanh -> Dropout(0.1) -> "
                    "Linear(256, 1)",
                    "inner": HEAD_INNER,
                    "dropout": HEAD_DROPOUT,
                },
                "pair_encoding": "[CLS] query [SEP] ad [SEP] with token type ids",
            }
        )
        manifest.setdefault("encoder", {})["pooling"] = self.pooling
        return manifest

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scores (shape ``[batch]``, float32) for a padded batch of encoded pairs."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.encoder(**kwargs)
        pooler = out.pooler_output if self.pooling == "pooler" else None
        return self.head(self._pool(out.last_hidden_state, pooler, attention_mask)).float()

    def _pool(self, hidden: torch.Tensor, pooler: torch.Tensor | None,
              attention_mask: torch.Tensor) -> torch.Tensor:
        """The pooled vector the head reads (see the module's note on pooling)."""
        if self.pooling == "pooler":
            assert pooler is not None, "pooling 'pooler' needs the pooler output"
            return pooler
        if self.pooling == "mean":
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return hidden[:, 0]

    def prepare_text(self, text: str) -> str:
        """The text as the model reads it (normalised, unless that would leave it empty)."""
        return model_text(text, self.normalize)

    def encode_pairs(self, queries: list[str], texts: list[str]) -> EncodedPairs:
        """Tokenise pairs as ``[CLS] query [SEP] ad [SEP]``, truncated to ``max_length``."""
        if len(queries) != len(texts):
            raise ValueError(f"{len(queries)} queries but {len(texts)} texts; give one per pair")
        if not queries:
            return EncodedPairs([], None)
        enc = self.tokenizer(
            [self.prepare_text(q) for q in queries],
            [self.prepare_text(t) for t in texts],
            truncation="longest_first",
            max_length=self.max_length,
            padding=False,
        )
        types = enc.get("token_type_ids") if uses_token_types(self.encoder) else None
        return EncodedPairs(list(enc["input_ids"]), list(types) if types is not None else None)

    def collate(self, pairs: EncodedPairs, rows: np.ndarray | list[int]) -> dict[str, torch.Tensor]:
        """A dynamically padded batch (padded to its longest member) of the given rows."""
        pad_id = self.tokenizer.pad_token_id or 0
        rows = list(rows)
        width = max(len(pairs.input_ids[r]) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        types = torch.zeros((len(rows), width), dtype=torch.long) if pairs.token_type_ids else None
        for i, r in enumerate(rows):
            n = len(pairs.input_ids[r])
            ids[i, :n] = torch.tensor(pairs.input_ids[r], dtype=torch.long)
            mask[i, :n] = 1
            if types is not None:
                types[i, :n] = torch.tensor(pairs.token_type_ids[r], dtype=torch.long)
        batch = {"input_ids": ids, "attention_mask": mask}
        if types is not None:
            batch["token_type_ids"] = types
        return batch

    # ------------------------------------------------------------------ user API
    def score(self, query: str, texts: list[str]) -> np.ndarray:
        """Relevance of each text to ``query`` on the 0–2 scale, as float32 in input order."""
        from rerank.scoring import score_query

        return score_query(self, query, texts)

    def rank(self, query: str, texts: list[str], top_k: int | None = None) -> list[dict]:
        """Texts sorted by :meth:`score`, best first: ``{"corpus_id", "score", "text"}`` each."""
        from rerank.scoring import rank_scores

        return rank_scores(self.score(query, texts), texts, top_k)

    def predict_pairs(self, queries: list[str], texts: list[str]) -> np.ndarray:
        """Scores for arbitrary (query, text) pairs, e.g. a whole dev set."""
        from rerank.scoring import score_pairs

        return score_pairs(self, queries, texts)


def _weights_digest(model: BertSim) -> str:
    """SHA-256 of the encoder's weights in memory (a model not loaded from a folder), naming
    its export in the cache."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().contiguous().numpy().tobytes())
    return digest.hexdigest()
