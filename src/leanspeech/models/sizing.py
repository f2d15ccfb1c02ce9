"""Memory rules for a Whisper model at a precision: the one home of every sizing rule.

- weights: from the model.bin header when a copy is here (exact layout), else from the
  architecture;
- activations: bytes per value at a compute type;
- what one window adds to a batched decode (``window_bytes``), and so how many windows a
  memory bound allows (``batch_limit``);
- the estimate the model manager counts against the budget before a load
  (``estimate_bytes``): weights, the encoder's self-attention scores for one window
  (heads x 1500 x 1500 float32, the largest transient) and the batched windows.
"""

from __future__ import annotations

from pathlib import Path

from leanspeech.models.catalog import Architecture


def activation_bytes(compute_type: str) -> int:
    """Bytes per activation value: 2 where the non-quantized layers run in 16 bits."""
    return 2 if compute_type.endswith(("float16", "bfloat16")) else 4


def weights_from_arch(arch: Architecture, compute_type: str) -> int:
    params = arch.parameters
    # dense, embedding and conv weights are ~99.5% of a Whisper's parameters
    dense = int(params * 0.995)
    other = params - dense
    float_bytes = activation_bytes(compute_type)
    if compute_type.startswith("int8"):
        return dense + other * float_bytes + dense // arch.d_model * 4  # int8 + per-row float32 scales
    if compute_type == "int16":
        return dense * 2 + other * 4
    return params * float_bytes


def encoder_peak(arch: Architecture) -> int:
    return arch.heads * arch.n_audio_ctx * arch.n_audio_ctx * 4


def window_bytes(arch: Architecture, beam_size: int, compute_type: str = "float32") -> int:
    """Memory one window adds to a batched decode: its encoder output (stacked on the host
    in float32), the cross-attention keys and values every decoder layer keeps for it, and
    the beams' self-attention cache at full length."""
    ctx, d, layers = arch.n_audio_ctx, arch.d_model, arch.decoder_layers
    act = activation_bytes(compute_type)
    encoder_out = ctx * d * 4
    cross = 2 * layers * ctx * d * act
    self_cache = beam_size * 2 * layers * arch.n_text_ctx * d * act
    return encoder_out + cross + self_cache


def batch_limit(arch: Architecture, *, batch_size: int, beam_size: int, batch_memory: int | None,
                compute_type: str = "float32") -> int:
    """How many windows to decode at once: ``batch_size`` cut to fit ``batch_memory`` bytes
    (None: no bound)."""
    if batch_size <= 1:
        return 1
    if batch_memory is None:
        return batch_size
    fit = batch_memory // max(1, window_bytes(arch, beam_size, compute_type))
    return int(max(1, min(batch_size, fit)))


def estimate_bytes(arch: Architecture, compute_type: str, *, beam_size: int = 5, batch: int = 1,
                   model_path: Path | None = None) -> int:
    """What a loaded model takes at its peak, before loading it."""
    if model_path is not None and (Path(model_path) / "model.bin").is_file():
        from leanspeech.models.modelbin import read_header, weight_bytes_at

        weights = weight_bytes_at(read_header(model_path), compute_type)
    else:
        weights = weights_from_arch(arch, compute_type)
    return weights + encoder_peak(arch) + batch * window_bytes(arch, beam_size, compute_type)
