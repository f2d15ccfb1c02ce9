"""Choosing and loading a speech-to-text engine: CTranslate2 (the default) or PyTorch.

The library's ``Transcriber``, the CLI and the runtime's model loader all load engines
here, so a backend's checks (its extra installed, its precision names) run in one place
and before anything loads.
"""

from __future__ import annotations

from pathlib import Path

from leanspeech.errors import InvalidOptionError, UnknownPrecisionError
from leanspeech.models.store import ResolvedModel
from leanspeech.precision import check_precision
from leanspeech.stt.engine import Engine

BACKENDS = ("ctranslate2", "torch")


def check_backend(backend: str, precision: str | None) -> None:
    """Refuse an unknown backend or a precision it does not have, and say which extra a
    backend needs, before any model is resolved or loaded."""
    if backend not in BACKENDS:
        raise InvalidOptionError(f"unknown backend {backend!r} (valid: {', '.join(BACKENDS)})", "backend")
    if backend == "torch":
        from leanspeech.stt.torch_engine import TORCH_PRECISIONS, import_torch

        import_torch()  # the install hint comes before anything loads
        if (precision or "auto") not in (*TORCH_PRECISIONS, "int8", "int8_float32"):
            raise UnknownPrecisionError(precision or "", TORCH_PRECISIONS)
    else:
        check_precision(precision or "auto")


def load_engine(
    resolved: ResolvedModel,
    *,
    backend: str = "ctranslate2",
    device: str = "auto",
    precision: str = "auto",
    cpu_threads: int = 0,
    strict: bool = False,
    model_dir: Path | None = None,
    quantize_on_disk: bool = False,
) -> Engine:
    """Load ``resolved`` on ``backend`` at the precision ``(device, precision)`` resolves to."""
    check_backend(backend, precision)
    if backend == "torch":
        from leanspeech.stt.torch_engine import TorchEngine

        return TorchEngine.load(resolved, device=device, precision=precision, strict=strict, model_dir=model_dir,
                                cpu_threads=cpu_threads)
    from leanspeech.stt.ct2_engine import CT2Engine

    return CT2Engine.load(resolved, device=device, precision=precision, cpu_threads=cpu_threads, strict=strict,
                          model_dir=model_dir, quantize_on_disk=quantize_on_disk)
