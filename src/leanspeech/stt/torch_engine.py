"""The PyTorch backend: Whisper on ``transformers`` (``pip install 'leanspeech[torch]'``).

The model is the CTranslate2 model's own weights, exported once to a transformers
checkpoint in the model directory (``models/export.py``), so both backends run identical
weights offline. ``TorchEngine`` implements the same ``Engine`` protocol as the CTranslate2
engine: files are cut into the same windows, run through the same decode loop
(``decode_loop``), decoded in batches by ``generate`` with SDPA attention, and put back
together by the same ``windows.assemble``.

Precisions (``resolve_torch``):

===============  =======================================  ========================================
precision        CPU                                      CUDA
===============  =======================================  ========================================
float32          yes                                      yes
float16          no: float32 (reason logged)              yes
bfloat16         yes                                      compute capability >= 8.0, else float16
int8-dynamic     ``quantize_dynamic`` on ``nn.Linear``    no (a CPU-only kernel): float16
autocast         float32 weights, bfloat16 autocast       float32 weights, float16 autocast
===============  =======================================  ========================================

``auto`` is float16 on CUDA and float32 on CPU: dynamic int8 is opt-in, because it costs
accuracy (docs, benchmark "Backends and the openai-whisper anchor"). In strict
mode every substitution is an error. CTranslate2's ``int8`` is taken as ``int8-dynamic``
(with the reason); the other CTranslate2-only names are refused with the list of valid ones.

Word timestamps are not offered on this backend (the CTranslate2 path aligns words with
its own DTW pass); asking for them is a clear error, not a silent omission.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from leanspeech.devices import parse_device
from leanspeech.errors import (
    InvalidOptionError,
    OptionalDependencyError,
    PrecisionUnsupportedError,
    UnknownDeviceError,
    UnknownPrecisionError,
)
from leanspeech.memory import PeakSampler, release_memory
from leanspeech.models.catalog import Architecture
from leanspeech.models.export import ensure_export
from leanspeech.models.modelbin import architecture, read_header
from leanspeech.models.store import ResolvedModel, default_model_dir
from leanspeech.precision import Resolution
from leanspeech.stt.engine import EncodedWindow
from leanspeech.stt.languages import check_model_options
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.segments import WindowSegment
from leanspeech.stt.windows import Window

logger = logging.getLogger(__name__)

TORCH_PRECISIONS = ("auto", "float32", "float16", "bfloat16", "int8-dynamic", "autocast")
BACKENDS = ("ctranslate2", "torch")


def import_torch():
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise OptionalDependencyError(exc.name or "torch", "torch", "the torch backend") from exc
    return torch


def _cuda_ok(torch, index: int) -> bool:
    return torch.cuda.is_available() and index < torch.cuda.device_count()


def resolve_torch(device: str = "auto", precision: str = "auto", *, strict: bool = False) -> Resolution:
    """What the torch backend will run for ``(device, precision)``, and why."""
    torch = import_torch()
    if precision in ("int8", "int8_float32"):
        if strict:
            raise PrecisionUnsupportedError(
                f"{precision} is a CTranslate2 precision; the torch backend has int8-dynamic"
            )
        requested, precision, note = (
            precision,
            "int8-dynamic",
            f"{precision} is CTranslate2's name; torch runs int8-dynamic",
        )
    else:
        requested, note = precision, ""
    if precision not in TORCH_PRECISIONS:
        raise UnknownPrecisionError(precision, TORCH_PRECISIONS)

    kind, index = parse_device(device)
    if kind == "auto":
        kind = "cuda" if _cuda_ok(torch, 0) else "cpu"
    elif kind == "cuda" and not _cuda_ok(torch, index):
        if strict:
            raise UnknownDeviceError(f"{device} is not available to PyTorch (torch.cuda.is_available() is False)")
        note = f"{device} is not available to PyTorch; using the CPU"
        kind, index = "cpu", 0

    def done(compute: str, reason: str, fallback: bool = False) -> Resolution:
        reason = "; ".join(r for r in (note, reason) if r)
        return Resolution(device, requested, kind, index, compute, reason, fallback=fallback)

    def substitute(compute: str, why: str) -> Resolution:
        if strict:
            raise PrecisionUnsupportedError(f"{precision} on {kind}: {why}")
        logger.warning("torch precision %s on %s: %s; using %s", precision, kind, why, compute)
        return done(compute, f"{why}; using {compute}", fallback=True)

    if precision == "auto":
        return (
            done("float16", "auto: float16 on CUDA")
            if kind == "cuda"
            else done("float32", "auto: float32 on CPU (int8-dynamic is opt-in: faster, but it costs accuracy)")
        )
    if kind == "cpu" and precision == "float16":
        return substitute(
            "float32", "float16 is CUDA-only on the torch backend (CPU half-precision matmuls are slow or missing)"
        )
    if kind == "cuda" and precision == "int8-dynamic":
        return substitute("float16", "quantize_dynamic has CPU kernels only")
    if kind == "cuda" and precision == "bfloat16" and not torch.cuda.is_bf16_supported():
        return substitute("float16", "this GPU has no bfloat16 (compute capability < 8.0)")
    return done(precision, f"{precision} on {kind}")


def linear_weight_bytes(model) -> int:
    """Bytes held by the weights of the model's Linear layers, float or dynamically
    quantized (int8 values plus their scales)."""
    import torch

    total = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            total += module.weight.numel() * module.weight.element_size()
        elif _is_dynamic_linear(module):
            weight = module.weight()
            total += weight.numel() * weight.element_size()
            if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
                total += weight.q_per_channel_scales().numel() * 8 * 2
            else:
                total += 16
    return total


def model_bytes(model) -> int:
    """Parameters, buffers and packed quantized weights."""
    seen = sum(p.numel() * p.element_size() for p in model.parameters())
    seen += sum(b.numel() * b.element_size() for b in model.buffers())
    return seen + sum(linear_weight_bytes(m) for m in model.modules() if _is_dynamic_linear(m))


def _is_dynamic_linear(module) -> bool:
    """torch.ao's dynamically quantized Linear (its weight lives in packed params)."""
    return (
        type(module).__name__ == "Linear"
        and callable(getattr(module, "weight", None))
        and hasattr(module, "_packed_params")
    )


class TorchEngine:
    """One Whisper model on transformers. Create with ``load``; ``close()`` frees it."""

    backend = "torch"

    def __init__(
        self,
        resolved: ResolvedModel,
        resolution: Resolution,
        model: Any,
        processor: Any,
        export_dir: Path,
        load_s: float,
        load_rss: int,
    ):
        torch = import_torch()
        self.resolved = resolved
        self.resolution = resolution
        self.model: Any = model
        self.processor = processor
        self.export_dir = export_dir
        self.load_s = load_s
        self.load_rss = load_rss
        self.arch: Architecture = architecture(read_header(resolved.path))
        self.weight_bytes = model_bytes(model)
        self.linear_weight_bytes = linear_weight_bytes(model)
        self.device = torch.device(resolution.device_id)
        self.model_dir: Path | None = None
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        resolved: ResolvedModel,
        *,
        device: str = "auto",
        precision: str = "auto",
        strict: bool = False,
        model_dir: Path | None = None,
        cpu_threads: int = 0,
    ) -> TorchEngine:
        torch = import_torch()
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        if resolved.synthetic:
            raise InvalidOptionError(
                f"{resolved.path} is a synthetic model; the torch backend transcribes real models only"
            )
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # its generation-config deprecation notes are not ours to act on
        resolution = resolve_torch(device, precision, strict=strict)
        if cpu_threads > 0:
            torch.set_num_threads(cpu_threads)
        export_dir = ensure_export(resolved, Path(model_dir) if model_dir else default_model_dir(), "transformers")
        start = time.perf_counter()
        with PeakSampler(0.02) as sampler:
            dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(resolution.compute_type, torch.float32)
            model: Any = WhisperForConditionalGeneration.from_pretrained(
                str(export_dir), dtype=dtype, attn_implementation="sdpa", local_files_only=True
            )
            model.eval()
            if resolution.compute_type == "int8-dynamic":
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
            model.to(resolution.device_id)
            processor = WhisperProcessor.from_pretrained(str(export_dir), local_files_only=True)
        load_s = time.perf_counter() - start
        logger.info("Loaded %s on torch (%s) in %.2fs: %s", resolved.name, export_dir, load_s, resolution.log_line())
        engine = cls(resolved, resolution, model, processor, export_dir, load_s, sampler.peak - sampler.start)
        engine.model_dir = model_dir
        return engine

    @property
    def name(self) -> str:
        return self.resolved.name

    @property
    def multilingual(self) -> bool:
        return self.arch.vocab_size >= 51865

    @property
    def closed(self) -> bool:
        return self.model is None

    def close(self) -> None:
        model, self.model = self.model, None
        del model
        gc.collect()
        with contextlib.suppress(Exception):
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        release_memory()

    def max_batch(self, options: TranscribeOptions) -> int:
        return max(1, options.batch_size)

    def check_options(self, options: TranscribeOptions) -> None:
        check_model_options(self.name, self.multilingual, options, self.model_dir)
        if options.word_timestamps:
            raise InvalidOptionError(
                "word timestamps are not available on the torch backend; use backend ctranslate2",
                "timestamp_granularities",
            )

    # ---- the Engine protocol --------------------------------------------------------

    def _autocast(self) -> Any:
        import torch

        if self.resolution.compute_type != "autocast":
            return contextlib.nullcontext()
        kind = self.resolution.device
        return torch.autocast(kind, dtype=torch.float16 if kind == "cuda" else torch.bfloat16)

    def encode(self, window: Window, span_s: float | None = None, pad_s: float | None = None) -> Any:
        """Log-mel features of one window, (n_mels, 3000), on the model's device and dtype
        (the encoder runs inside ``generate``, with the batch). The input is always Whisper's
        30 s here (``span_s`` and ``pad_s`` are CTranslate2's)."""
        import torch

        feats = self.processor.feature_extractor(
            [window.audio], sampling_rate=16000, return_tensors="pt"
        ).input_features[0]
        dtype = next(p.dtype for p in self.model.parameters() if p.is_floating_point())
        return feats.to(self.device, dtype=dtype if dtype in (torch.float16, torch.bfloat16) else torch.float32)

    def _avg_logprobs(self, out: Any) -> list[float]:
        """Mean log-probability of each sequence's generated tokens (up to end-of-text), as
        Whisper reports ``avg_logprob``; beam search gives its own normalized score."""
        import torch

        if getattr(out, "sequences_scores", None) is not None:
            return [float(x) for x in out.sequences_scores]
        steps = len(out.scores)
        generated = out.sequences[:, -steps:]
        logprobs = torch.stack([torch.log_softmax(s.float(), dim=-1) for s in out.scores], dim=1)
        picked = logprobs.gather(2, generated.unsqueeze(-1)).squeeze(-1)
        eot = self.model.generation_config.eos_token_id
        ended = (generated == eot).long().cumsum(1)
        valid = (ended == 0) | ((ended == 1) & (generated == eot))  # through the first end-of-text
        picked = torch.where(valid & torch.isfinite(picked), picked, torch.zeros_like(picked))
        return [float(picked[i].sum() / max(int(valid[i].sum()), 1)) for i in range(picked.shape[0])]

    def detect_language(self, encoded: Any) -> tuple[str, float]:
        if not self.multilingual:
            return "en", 1.0
        import torch

        with torch.inference_mode(), self._autocast():
            ids = self.model.detect_language(encoded[None])
        token = self.processor.tokenizer.convert_ids_to_tokens(int(ids[0]))
        return token.strip("<|>"), 1.0

    def detect_speech_language(self, audio: np.ndarray, min_s: float = 10.0) -> tuple[str, float]:
        return self.detect_language(self.encode(Window.of(audio)))  # transformers' encoder takes 30 s

    def decode(self, items: Sequence[EncodedWindow], options: TranscribeOptions) -> list[list[WindowSegment]]:
        """Decode a batch, one ``generate`` call per language in it."""
        self.check_options(options)
        out: list[list[WindowSegment]] = [[] for _ in items]
        for language in dict.fromkeys(it.language for it in items):
            idx = [i for i, it in enumerate(items) if it.language == language]
            for i, result in zip(idx, self._generate([items[i] for i in idx], options, language), strict=True):
                out[i] = result
        return out

    def _generate(
        self, items: list[EncodedWindow], options: TranscribeOptions, language: str
    ) -> list[list[WindowSegment]]:
        import torch

        kwargs: dict[str, Any] = {
            "num_beams": options.beam_size,
            "return_dict_in_generate": True,
            "output_scores": True,
            "return_timestamps": False,
        }
        if options.temperature > 0:
            kwargs.update(do_sample=True, temperature=options.temperature)
        else:
            kwargs["do_sample"] = False
        if self.multilingual:
            kwargs.update(language=language, task=options.task)
        context = " ".join(t for t in (options.hotwords, options.initial_prompt) if t)
        if context:  # hotwords go before the prompt, as on the CTranslate2 path
            kwargs["prompt_ids"] = torch.as_tensor(self.processor.get_prompt_ids(context), device=self.device)
        features = torch.stack([it.encoded for it in items])
        with self._lock, torch.inference_mode(), self._autocast():
            generated = self.model.generate(features, **kwargs)
            avg_logprobs = self._avg_logprobs(generated)
        tokenizer = self.processor.tokenizer
        eot = self.model.generation_config.eos_token_id
        per_window: list[list[WindowSegment]] = []
        for i, item in enumerate(items):
            window = item.window
            tokens = tuple(int(t) for t in generated.sequences[i].tolist() if int(t) < eot)
            text = tokenizer.decode(list(tokens))
            if not text.strip():
                per_window.append([])
                continue
            per_window.append(
                [
                    WindowSegment(
                        text=text,
                        tokens=tokens,
                        start=window.offset,
                        end=window.offset + window.duration,
                        avg_logprob=avg_logprobs[i],
                        temperature=options.temperature,
                    )
                ]
            )
        return per_window
