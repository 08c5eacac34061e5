"""One forward pass of a transformer on a padded batch, by the chosen back-end.

:class:`ModelRunner` takes the input tensors of a batch (``input_ids``, ``attention_mask``,
``token_type_ids`` where the model uses them) and returns the requested outputs
(``last_hidden_state``, ``pooler_output``) as float32 torch tensors, whatever ran them: PyTorch
in fp32 or bf16 autocast, OpenVINO (bf16 on AMX) or onnxruntime. Callers pool, normalise or
score on top, so the encoder and BertSim share this one place. Safe to call from several threads
(OpenVINO gets one infer request per thread).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from adrecall.backends import export_cache_root, require
from adrecall.onnx_export import exported_onnx
from adrecall.precision import autocast


class ModelRunner:
    """``encoder``'s ``output_names`` for a batch, run by ``backend`` (not ``auto``: see
    :mod:`adrecall.backend_choice`). ``weights_sha256`` names the export in the cache;
    ``threads`` sets the back-end's thread count (for torch: the process's)."""

    def __init__(self, encoder: nn.Module, backend: str, *, weights_sha256: str,
                 input_names: Sequence[str], output_names: Sequence[str],
                 threads: int | None = None) -> None:
        require(backend)
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.backend = backend
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)
        self._encoder = encoder
        self._local = threading.local()
        if backend.startswith("torch"):
            if threads is not None:
                torch.set_num_threads(threads)
            self._compiled: Any = None
            return
        onnx_path = exported_onnx(encoder, weights_sha256, self.input_names, self.output_names)
        if backend == "openvino":
            import openvino

            core = openvino.Core()
            config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "bf16",
                                      "PERFORMANCE_HINT": "LATENCY",
                                      "CACHE_DIR": str(export_cache_root() / "openvino-blobs")}
            if threads is not None:
                # OpenVINO pins its threads to the first cores: processes that each got a few
                # threads (Dask workers, one service per core) would all share those cores
                config["INFERENCE_NUM_THREADS"] = threads
                config["ENABLE_CPU_PINNING"] = False
            self._compiled = core.compile_model(str(onnx_path), "CPU", config)
        else:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            if threads is not None:
                options.intra_op_num_threads = threads
            options.log_severity_level = 3
            # idle intra-op threads would spin, taking the cores from whatever runs next
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._compiled = onnxruntime.InferenceSession(
                str(onnx_path), options, providers=["CPUExecutionProvider"])

    def __call__(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The outputs for one padded batch, float32, by name."""
        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            raise ValueError(f"the batch lacks {missing}; the model reads {self.input_names}")
        if self.backend.startswith("torch"):
            with torch.inference_mode(), autocast("bf16" if self.backend == "torch-bf16" else "fp32"):
                out = self._encoder(**{n: inputs[n] for n in self.input_names}, return_dict=True)
            return {name: getattr(out, name).float() for name in self.output_names}
        feeds = {name: inputs[name].numpy().astype(np.int64, copy=False)
                 for name in self.input_names}
        if self.backend == "openvino":
            request = getattr(self._local, "request", None)
            if request is None:
                request = self._local.request = self._compiled.create_infer_request()
            result = request.infer(feeds)
            values = [np.array(result[self._compiled.output(name)]) for name in self.output_names]
        else:
            values = self._compiled.run(list(self.output_names), feeds)
        return {name: torch.from_numpy(np.asarray(v, dtype=np.float32))
                for name, v in zip(self.output_names, values)}
