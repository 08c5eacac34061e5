"""A transformer exported to ONNX once per set of weights, for the ``openvino`` and ``onnx``
back-ends.

Plain ``torch.onnx.export`` (the TorchScript exporter) with dynamic batch and sequence axes;
optimum is not used, as it pins transformers 4.x. The file is cached under
:func:`adrecall.backends.export_cache_root`, in a folder named by the weights' hash and the
outputs exported, and never exported again while it is there. It is written to a temporary
folder and renamed into place, so a killed export leaves nothing a later load would trust, and
two processes exporting at once both end with the same complete file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from adrecall.backends import export_cache_root

EXPORT_VERSION = 1
"""Bumped when the export itself changes, so older cached files are not reused."""
OPSET = 17
ONNX_FILE = "model.onnx"


class _Outputs(nn.Module):
    """A Hugging Face encoder as a function of its input tensors, returning named outputs."""

    def __init__(self, encoder: nn.Module, input_names: Sequence[str],
                 output_names: Sequence[str]) -> None:
        super().__init__()
        self.encoder = encoder
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.encoder(**dict(zip(self.input_names, inputs)), return_dict=True)
        return tuple(getattr(out, name) for name in self.output_names)


def export_key(weights_sha256: str, input_names: Sequence[str],
               output_names: Sequence[str]) -> str:
    """The cache folder's name: the weights' hash with what was exported."""
    what = f"{EXPORT_VERSION}|{OPSET}|{','.join(input_names)}|{','.join(output_names)}"
    return f"{weights_sha256[:24]}-{hashlib.sha256(what.encode()).hexdigest()[:12]}"


def exported_onnx(encoder: nn.Module, weights_sha256: str, input_names: Sequence[str],
                  output_names: Sequence[str], cache_root: Path | None = None) -> Path:
    """The ONNX file of ``encoder`` (its ``output_names`` as functions of ``input_names``),
    exported now unless the cache already holds it."""
    root = cache_root or export_cache_root()
    final = root / export_key(weights_sha256, input_names, output_names)
    if (final / ONNX_FILE).is_file():
        return final / ONNX_FILE
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=root))
    try:
        _export(encoder, input_names, output_names, staging / ONNX_FILE)
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / ONNX_FILE).is_file():  # not another process's finished export
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final / ONNX_FILE


def _export(encoder: nn.Module, input_names: Sequence[str], output_names: Sequence[str],
            path: Path) -> None:
    """Trace ``encoder`` on a small batch, with batch and sequence axes left dynamic. The
    example batch is padded (one row's mask ends in zeros): traced on an all-ones mask, the
    attention code may leave the mask out of the graph as a constant."""
    mask = torch.ones((2, 8), dtype=torch.long)
    mask[1, 5:] = 0
    example = tuple(mask if name == "attention_mask" else torch.ones((2, 8), dtype=torch.long)
                    for name in input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    axes.update({name: {0: "batch", 1: "sequence"} if name == "last_hidden_state"
                 else {0: "batch"} for name in output_names})
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shape checks it folds
            torch.onnx.export(
                _Outputs(encoder, input_names, output_names), example, str(path),
                input_names=list(input_names), output_names=list(output_names),
                dynamic_axes=axes, opset_version=OPSET, dynamo=False,
            )
    finally:
        encoder.train(was_training)
