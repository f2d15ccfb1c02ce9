"""Export a CTranslate2 Whisper model to PyTorch checkpoints, exactly.

CTranslate2's converter fuses Whisper's attention projections: self-attention q, k and v
become one ``linear_0`` (3*d x d), cross-attention k and v one ``linear_1`` (2*d x d). k has
no bias in Whisper, so its slice of the fused bias is zero. Everything else is renamed
one to one. This module splits the fused weights back and writes:

- ``transformers``: a Hugging Face directory (``model.safetensors``, ``config.json``,
  ``generation_config.json``, tokenizer and feature-extractor files) that
  ``WhisperForConditionalGeneration.from_pretrained`` loads offline;
- ``openai-whisper``: one ``.pt`` file with ``dims`` and ``model_state_dict``, which
  ``whisper.load_model(path)`` loads.

Weights keep their values: float16 weights are widened to float32, which is lossless, so
the three engines run the same numbers (``tests/torch/test_torch_path.py`` proves it on
the encoder output and the transcript). A weight stored as int8 is dequantized with its scale first; that copy is
then only as exact as the int8 model it came from, and the export says so in its log.

Writes are atomic (a temporary sibling renamed into place), and an existing target needs
``force=True``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leanspeech.errors import CorruptModelError, LeanspeechError, OptionalDependencyError
from leanspeech.models.modelbin import ModelBin, architecture, read_header
from leanspeech.models.quantize import read_arrays, store_key
from leanspeech.models.store import ResolvedModel

logger = logging.getLogger(__name__)

FORMATS = ("transformers", "openai-whisper")
OPENAI_FILE = "model.pt"


class ExportExistsError(LeanspeechError):
    kind = "export_exists"


@dataclass(frozen=True)
class Tokens:
    """Special token ids, read from the model's tokenizer.json by name."""

    eot: int
    sot: int
    translate: int
    transcribe: int
    prev: int
    no_timestamps: int
    languages: dict[str, int]

    @classmethod
    def read(cls, model_dir: Path) -> Tokens:
        path = model_dir / "tokenizer.json"
        if not path.is_file():
            raise CorruptModelError(f"{model_dir}: no tokenizer.json; it is needed to export the model")
        added = {t["content"]: t["id"] for t in json.loads(path.read_text(encoding="utf-8"))["added_tokens"]}
        try:
            return cls(added["<|endoftext|>"], added["<|startoftranscript|>"], added["<|translate|>"],
                       added["<|transcribe|>"], added["<|startofprev|>"], added["<|notimestamps|>"],
                       {c[2:-2]: i for c, i in added.items() if 2 <= len(c) - 4 <= 3 and c[2:-2].isalpha()
                        and c not in ("<|translate|>",)})
        except KeyError as exc:
            raise CorruptModelError(f"{path}: special token {exc.args[0]} is missing") from None


def export_path(model_dir: Path, resolved: ResolvedModel, fmt: str) -> Path:
    """Where the export of a model is kept in the model directory (the torch backend and the
    openai-whisper anchor look there)."""
    folder = Path(model_dir) / "exports" / f"{store_key(resolved)}-{fmt}"
    return folder / OPENAI_FILE if fmt == "openai-whisper" else folder


# ---- weights --------------------------------------------------------------------------


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _split(weight: np.ndarray, bias: np.ndarray, parts: int, d: int, name: str):
    """Split a fused projection into ``parts`` (weight, bias) pairs; k's bias must be zero."""
    if weight.shape != (parts * d, d) or bias.shape != (parts * d,):
        raise CorruptModelError(f"{name}: fused projection of shape {weight.shape} does not split into {parts} x {d}")
    return [(weight[i * d : (i + 1) * d], bias[i * d : (i + 1) * d]) for i in range(parts)]


def _attention(arrays: dict, scope: str, fused: str, d: int) -> dict[str, np.ndarray]:
    """q, k, v, out (weight, bias) of one attention block, as plain arrays."""
    if fused == "qkv":
        (qw, qb), (kw, kb), (vw, vb) = _split(
            arrays[f"{scope}/linear_0/weight"], arrays[f"{scope}/linear_0/bias"], 3, d, scope
        )
        ow, ob = arrays[f"{scope}/linear_1/weight"], arrays[f"{scope}/linear_1/bias"]
    else:  # cross-attention: q alone, k and v fused
        qw, qb = arrays[f"{scope}/linear_0/weight"], arrays[f"{scope}/linear_0/bias"]
        (kw, kb), (vw, vb) = _split(arrays[f"{scope}/linear_1/weight"], arrays[f"{scope}/linear_1/bias"], 2, d, scope)
        ow, ob = arrays[f"{scope}/linear_2/weight"], arrays[f"{scope}/linear_2/bias"]
    if np.any(kb != 0):
        raise CorruptModelError(f"{scope}: the key projection has a non-zero bias; this is not a Whisper model")
    return {
        "q.w": qw,
        "q.b": qb,
        "k.w": kw,
        "v.w": vw,
        "v.b": vb,
        "o.w": ow,
        "o.b": ob,
        "ln.w": arrays[f"{scope}/layer_norm/gamma"],
        "ln.b": arrays[f"{scope}/layer_norm/beta"],
    }


def _layers(header: ModelBin, arrays: dict) -> dict:
    """The model as a neutral nested structure; the two writers only rename it."""
    arch = architecture(header)
    d = arch.d_model
    missing = [
        n for n in ("encoder/conv1/weight", "decoder/embeddings/weight", "encoder/layer_norm/gamma") if n not in arrays
    ]
    if missing:
        raise CorruptModelError(f"{header.path}: not a Whisper model.bin (missing {', '.join(missing)})")

    def ffn(scope):
        return {
            "ln.w": arrays[f"{scope}/layer_norm/gamma"],
            "ln.b": arrays[f"{scope}/layer_norm/beta"],
            "fc1.w": arrays[f"{scope}/linear_0/weight"],
            "fc1.b": arrays[f"{scope}/linear_0/bias"],
            "fc2.w": arrays[f"{scope}/linear_1/weight"],
            "fc2.b": arrays[f"{scope}/linear_1/bias"],
        }

    enc = [
        {
            "self": _attention(arrays, f"encoder/layer_{i}/self_attention", "qkv", d),
            "ffn": ffn(f"encoder/layer_{i}/ffn"),
        }
        for i in range(arch.encoder_layers)
    ]
    dec = [
        {
            "self": _attention(arrays, f"decoder/layer_{i}/self_attention", "qkv", d),
            "cross": _attention(arrays, f"decoder/layer_{i}/attention", "kv", d),
            "ffn": ffn(f"decoder/layer_{i}/ffn"),
        }
        for i in range(arch.decoder_layers)
    ]
    return {
        "arch": arch,
        "conv1.w": arrays["encoder/conv1/weight"],
        "conv1.b": arrays["encoder/conv1/bias"],
        "conv2.w": arrays["encoder/conv2/weight"],
        "conv2.b": arrays["encoder/conv2/bias"],
        "enc.pos": arrays["encoder/position_encodings/encodings"],
        "enc.ln.w": arrays["encoder/layer_norm/gamma"],
        "enc.ln.b": arrays["encoder/layer_norm/beta"],
        "dec.emb": arrays["decoder/embeddings/weight"],
        "dec.pos": arrays["decoder/position_encodings/encodings"],
        "dec.ln.w": arrays["decoder/layer_norm/gamma"],
        "dec.ln.b": arrays["decoder/layer_norm/beta"],
        "enc": enc,
        "dec": dec,
    }


def _alignment_heads(model_dir: Path) -> list[list[int]]:
    config = model_dir / "config.json"
    if config.is_file():
        return json.loads(config.read_text(encoding="utf-8")).get("alignment_heads") or []
    return []


def _suppress(model_dir: Path) -> tuple[list[int], list[int]]:
    config = model_dir / "config.json"
    data = json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}
    return list(data.get("suppress_ids") or []), list(data.get("suppress_ids_begin") or [])


def hf_state_dict(m: dict) -> dict[str, np.ndarray]:
    """Names of ``transformers``' ``WhisperForConditionalGeneration``."""
    out = {
        "model.encoder.conv1.weight": m["conv1.w"],
        "model.encoder.conv1.bias": m["conv1.b"],
        "model.encoder.conv2.weight": m["conv2.w"],
        "model.encoder.conv2.bias": m["conv2.b"],
        "model.encoder.embed_positions.weight": m["enc.pos"],
        "model.encoder.layer_norm.weight": m["enc.ln.w"],
        "model.encoder.layer_norm.bias": m["enc.ln.b"],
        "model.decoder.embed_tokens.weight": m["dec.emb"],
        "model.decoder.embed_positions.weight": m["dec.pos"],
        "model.decoder.layer_norm.weight": m["dec.ln.w"],
        "model.decoder.layer_norm.bias": m["dec.ln.b"],
    }

    def attn(prefix, a, ln_name):
        out.update(
            {
                f"{prefix}.q_proj.weight": a["q.w"],
                f"{prefix}.q_proj.bias": a["q.b"],
                f"{prefix}.k_proj.weight": a["k.w"],
                f"{prefix}.v_proj.weight": a["v.w"],
                f"{prefix}.v_proj.bias": a["v.b"],
                f"{prefix}.out_proj.weight": a["o.w"],
                f"{prefix}.out_proj.bias": a["o.b"],
                f"{ln_name}.weight": a["ln.w"],
                f"{ln_name}.bias": a["ln.b"],
            }
        )

    def ffn(prefix, f):
        out.update(
            {
                f"{prefix}.fc1.weight": f["fc1.w"],
                f"{prefix}.fc1.bias": f["fc1.b"],
                f"{prefix}.fc2.weight": f["fc2.w"],
                f"{prefix}.fc2.bias": f["fc2.b"],
                f"{prefix}.final_layer_norm.weight": f["ln.w"],
                f"{prefix}.final_layer_norm.bias": f["ln.b"],
            }
        )

    for i, layer in enumerate(m["enc"]):
        p = f"model.encoder.layers.{i}"
        attn(f"{p}.self_attn", layer["self"], f"{p}.self_attn_layer_norm")
        ffn(p, layer["ffn"])
    for i, layer in enumerate(m["dec"]):
        p = f"model.decoder.layers.{i}"
        attn(f"{p}.self_attn", layer["self"], f"{p}.self_attn_layer_norm")
        attn(f"{p}.encoder_attn", layer["cross"], f"{p}.encoder_attn_layer_norm")
        ffn(p, layer["ffn"])
    return {k: _f32(v) for k, v in out.items()}


def openai_state_dict(m: dict) -> dict[str, np.ndarray]:
    """Names of ``openai-whisper``'s ``Whisper`` module."""
    out = {
        "encoder.conv1.weight": m["conv1.w"],
        "encoder.conv1.bias": m["conv1.b"],
        "encoder.conv2.weight": m["conv2.w"],
        "encoder.conv2.bias": m["conv2.b"],
        "encoder.positional_embedding": m["enc.pos"],
        "encoder.ln_post.weight": m["enc.ln.w"],
        "encoder.ln_post.bias": m["enc.ln.b"],
        "decoder.token_embedding.weight": m["dec.emb"],
        "decoder.positional_embedding": m["dec.pos"],
        "decoder.ln.weight": m["dec.ln.w"],
        "decoder.ln.bias": m["dec.ln.b"],
    }

    def attn(prefix, a):
        out.update(
            {
                f"{prefix}.query.weight": a["q.w"],
                f"{prefix}.query.bias": a["q.b"],
                f"{prefix}.key.weight": a["k.w"],
                f"{prefix}.value.weight": a["v.w"],
                f"{prefix}.value.bias": a["v.b"],
                f"{prefix}.out.weight": a["o.w"],
                f"{prefix}.out.bias": a["o.b"],
                f"{prefix}_ln.weight": a["ln.w"],
                f"{prefix}_ln.bias": a["ln.b"],
            }
        )

    def mlp(prefix, f):
        out.update(
            {
                f"{prefix}.mlp.0.weight": f["fc1.w"],
                f"{prefix}.mlp.0.bias": f["fc1.b"],
                f"{prefix}.mlp.2.weight": f["fc2.w"],
                f"{prefix}.mlp.2.bias": f["fc2.b"],
                f"{prefix}.mlp_ln.weight": f["ln.w"],
                f"{prefix}.mlp_ln.bias": f["ln.b"],
            }
        )

    for i, layer in enumerate(m["enc"]):
        attn(f"encoder.blocks.{i}.attn", layer["self"])
        mlp(f"encoder.blocks.{i}", layer["ffn"])
    for i, layer in enumerate(m["dec"]):
        attn(f"decoder.blocks.{i}.attn", layer["self"])
        attn(f"decoder.blocks.{i}.cross_attn", layer["cross"])
        mlp(f"decoder.blocks.{i}", layer["ffn"])
    return {k: _f32(v) for k, v in out.items()}


# ---- configuration files --------------------------------------------------------------


def hf_configs(m: dict, tokens: Tokens, model_dir: Path) -> dict[str, dict]:
    arch = m["arch"]
    suppress, suppress_begin = _suppress(model_dir)
    heads = _alignment_heads(model_dir)
    ffn_dim = int(m["enc"][0]["ffn"]["fc1.w"].shape[0])
    multilingual = arch.vocab_size >= 51865
    config = {
        "architectures": ["WhisperForConditionalGeneration"],
        "model_type": "whisper",
        "vocab_size": arch.vocab_size,
        "num_mel_bins": arch.n_mels,
        "d_model": arch.d_model,
        "encoder_layers": arch.encoder_layers,
        "decoder_layers": arch.decoder_layers,
        "encoder_attention_heads": arch.heads,
        "decoder_attention_heads": arch.heads,
        "encoder_ffn_dim": ffn_dim,
        "decoder_ffn_dim": ffn_dim,
        "max_source_positions": arch.n_audio_ctx,
        "max_target_positions": arch.n_text_ctx,
        "activation_function": "gelu",
        "scale_embedding": False,
        "tie_word_embeddings": True,
        "pad_token_id": tokens.eot,
        "bos_token_id": tokens.eot,
        "eos_token_id": tokens.eot,
        "decoder_start_token_id": tokens.sot,
        "suppress_tokens": suppress,
        "begin_suppress_tokens": suppress_begin,
        "torch_dtype": "float32",
        "use_cache": True,
    }
    generation = {
        "decoder_start_token_id": tokens.sot,
        "bos_token_id": tokens.eot,
        "eos_token_id": tokens.eot,
        "pad_token_id": tokens.eot,
        "max_length": arch.n_text_ctx,
        "no_timestamps_token_id": tokens.no_timestamps,
        "prev_sot_token_id": tokens.prev,
        "suppress_tokens": suppress,
        "begin_suppress_tokens": suppress_begin,
        "alignment_heads": heads,
        "is_multilingual": multilingual,
        "max_initial_timestamp_index": 50,
        "return_timestamps": False,
    }
    if multilingual:
        generation["lang_to_id"] = {f"<|{k}|>": v for k, v in tokens.languages.items()}
        generation["task_to_id"] = {"transcribe": tokens.transcribe, "translate": tokens.translate}
    tokenizer = {
        "tokenizer_class": "WhisperTokenizer",
        "bos_token": "<|endoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": 1024,
        "add_prefix_space": False,
        "errors": "replace",
        "processor_class": "WhisperProcessor",
    }
    features = {
        "feature_extractor_type": "WhisperFeatureExtractor",
        "feature_size": arch.n_mels,
        "sampling_rate": 16000,
        "hop_length": 160,
        "chunk_length": 30,
        "n_fft": 400,
        "n_samples": 480000,
        "nb_max_frames": 3000,
        "padding_side": "right",
        "padding_value": 0.0,
        "return_attention_mask": False,
        "processor_class": "WhisperProcessor",
    }
    return {
        "config.json": config,
        "generation_config.json": generation,
        "tokenizer_config.json": tokenizer,
        "preprocessor_config.json": features,
    }


def openai_dims(m: dict) -> dict:
    arch = m["arch"]
    return {
        "n_mels": arch.n_mels,
        "n_audio_ctx": arch.n_audio_ctx,
        "n_audio_state": arch.d_model,
        "n_audio_head": arch.heads,
        "n_audio_layer": arch.encoder_layers,
        "n_vocab": arch.vocab_size,
        "n_text_ctx": arch.n_text_ctx,
        "n_text_state": arch.d_model,
        "n_text_head": arch.heads,
        "n_text_layer": arch.decoder_layers,
    }


# ---- writing --------------------------------------------------------------------------


def _read(model_dir: Path) -> tuple[ModelBin, dict]:
    header = read_header(model_dir)
    if header.spec_name != "WhisperSpec":
        raise CorruptModelError(f"{model_dir}: a {header.spec_name} model, not Whisper; only Whisper models export")
    if any(v.dtype in ("int8", "int16") and v.name.endswith("/weight") for v in header.variables):
        logger.warning(
            "%s holds int8 weights; they are dequantized, so the export is as exact as that model", model_dir
        )
    return header, _layers(header, read_arrays(header))


def _prepare_target(target: Path, force: bool) -> Path:
    if target.exists():
        if not force:
            raise ExportExistsError(f"{target} already exists; pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))


def _replace(tmp: Path, target: Path) -> None:
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    tmp.rename(target)


def export_transformers(model_dir: str | Path, target: str | Path, *, force: bool = False) -> Path:
    """Write a Hugging Face Whisper directory to ``target``."""
    try:
        from safetensors.numpy import save_file
    except ImportError as exc:
        raise OptionalDependencyError("safetensors", "torch", "export to transformers") from exc
    model_dir, target = Path(model_dir), Path(target)
    tokens = Tokens.read(model_dir)
    _, m = _read(model_dir)
    tmp = _prepare_target(target, force)
    try:
        state = hf_state_dict(m)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt", "source": "leanspeech export"})
        for name, data in hf_configs(m, tokens, model_dir).items():
            (tmp / name).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        shutil.copyfile(model_dir / "tokenizer.json", tmp / "tokenizer.json")
        _replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("exported %s to %s (transformers, %d tensors)", model_dir, target, len(state))
    return target


def export_openai(model_dir: str | Path, target: str | Path, *, force: bool = False) -> Path:
    """Write an openai-whisper checkpoint (``dims`` + ``model_state_dict``) to ``target``
    (a file path; a directory gets ``model.pt`` inside)."""
    try:
        import torch
    except ImportError as exc:
        raise OptionalDependencyError("torch", "torch", "export to openai-whisper") from exc
    model_dir, target = Path(model_dir), Path(target)
    if target.suffix != ".pt":
        target = target / OPENAI_FILE
    _, m = _read(model_dir)
    tmp = _prepare_target(target, force)
    try:
        state = {k: torch.from_numpy(v) for k, v in openai_state_dict(m).items()}
        torch.save({"dims": openai_dims(m), "model_state_dict": state}, tmp / OPENAI_FILE)
        _replace(tmp / OPENAI_FILE, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("exported %s to %s (openai-whisper, %d tensors)", model_dir, target, len(state))
    return target


def export(model_dir: str | Path, target: str | Path, fmt: str, *, force: bool = False) -> Path:
    if fmt == "transformers":
        return export_transformers(model_dir, target, force=force)
    if fmt == "openai-whisper":
        return export_openai(model_dir, target, force=force)
    raise LeanspeechError(f"unknown export format {fmt!r} (valid: {', '.join(FORMATS)})")


def ensure_export(resolved: ResolvedModel, model_dir: Path, fmt: str) -> Path:
    """The model's export in the model directory, made on first use (offline: it is read
    from the CTranslate2 weights already on disk)."""
    target = export_path(model_dir, resolved, fmt)
    ready = target / "model.safetensors" if fmt == "transformers" else target
    if not ready.exists():
        export(resolved.path, target, fmt, force=target.exists())
    return target
