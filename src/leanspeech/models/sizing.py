"""Analytic memory estimates for a Whisper model at a precision, before loading it.

weights: from the model.bin header when a copy is here (exact layout), else from the
architecture; runtime: the encoder's self-attention scores for one window (heads x
1500 x 1500 float32, the largest transient) plus what each batched window adds
(``stt.batched.window_bytes``).
"""

from __future__ import annotations

from pathlib import Path

from .catalog import Architecture


def weights_from_arch(arch: Architecture, compute_type: str) -> int:
    params = arch.parameters
    # dense, embedding and conv weights are ~99.5% of a Whisper's parameters
    dense = int(params * 0.995)
    other = params - dense
    float_bytes = 2 if compute_type.endswith(("float16", "bfloat16")) and compute_type != "int8_float32" else 4
    if compute_type.startswith("int8"):
        return dense + other * float_bytes + dense // arch.d_model * 4  # int8 + per-row float32 scales
    if compute_type == "int16":
        return dense * 2 + other * 4
    return params * float_bytes


def encoder_peak(arch: Architecture) -> int:
    return arch.heads * arch.n_audio_ctx * arch.n_audio_ctx * 4


def estimate_bytes(arch: Architecture, compute_type: str, *, beam_size: int = 5, batch: int = 1,
                   model_path: Path | None = None) -> int:
    from ..stt.batched import window_bytes

    if model_path is not None and (Path(model_path) / "model.bin").is_file():
        from .modelbin import read_header, weight_bytes_at

        weights = weight_bytes_at(read_header(model_path), compute_type)
    else:
        weights = weights_from_arch(arch, compute_type)
    act = 2 if compute_type.endswith(("float16", "bfloat16")) else 4
    return weights + encoder_peak(arch) + batch * window_bytes(arch, beam_size, act)
