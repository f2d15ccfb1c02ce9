"""Store a CTranslate2 Whisper model with its weights at a chosen precision, once.

CTranslate2 converts weights at every load and keeps nothing. Here the existing
``model.bin`` is read (``modelbin.py``), the ``WhisperSpec`` is rebuilt with
``ctranslate2.specs`` and saved with the wanted quantization. Later loads at that precision
read the stored copy directly: smaller on disk and no conversion at load.

Writes are atomic: the copy is built in a temporary directory beside its destination and
renamed into place, so an interrupted or concurrent conversion never leaves a half-written
model (the loser of a race discards its copy). tokenizer.json, the vocabulary and the configs
are carried over.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from leanspeech.errors import CorruptModelError, LeanspeechError, OptionalDependencyError
from leanspeech.models.modelbin import ModelBin, architecture, read_header
from leanspeech.models.store import ResolvedModel

logger = logging.getLogger(__name__)

STORABLE = ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "float16", "bfloat16", "float32")
CARRY = ("tokenizer.json", "preprocessor_config.json", "config.json", "vocabulary.json", "vocabulary.txt")
_NP = {"float32": np.float32, "float16": np.float16, "int8": np.int8, "int16": np.int16, "int32": np.int32}


class DiskFullError(LeanspeechError):
    kind = "disk_full"


def store_key(resolved: ResolvedModel) -> str:
    """A directory name for the model's source: the catalog name, or the local directory's
    name plus a hash of its path."""
    if resolved.entry is not None and resolved.source != "local":
        return resolved.name
    digest = hashlib.sha256(str(resolved.path.resolve()).encode()).hexdigest()[:10]
    return f"{resolved.path.name}-{digest}"


def quantized_path(model_dir: Path, resolved: ResolvedModel, precision: str) -> Path:
    return Path(model_dir) / "quantized" / f"{store_key(resolved)}-{precision}"


def read_arrays(header: ModelBin) -> dict[str, np.ndarray]:
    """Every variable as a numpy array; int8/int16 weights with a scale come back dequantized
    to float32, so the spec can be quantized again to anything."""
    out: dict[str, np.ndarray] = {}
    with open(header.path, "rb") as fh:
        for var in header.variables:
            fh.seek(var.offset)
            raw = fh.read(var.nbytes)
            if var.dtype == "bfloat16":
                bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
                array = bits.view(np.float32)
            else:
                array = np.frombuffer(raw, dtype=_NP[var.dtype]).copy()
            out[var.name] = array.reshape(var.shape) if var.shape else array.reshape(())
    for name in [n for n in out if n.endswith("_scale")]:
        weight_name = name[: -len("_scale")]
        scale = out.pop(name).astype(np.float32)
        weight = out[weight_name].astype(np.float32)
        shape = weight.shape
        flat = weight.reshape(shape[0], -1) if scale.ndim == 1 else weight
        out[weight_name] = (flat / (scale.reshape(-1, 1) if scale.ndim == 1 else scale)).reshape(shape)
    return out


def build_spec(header: ModelBin, arrays: dict[str, np.ndarray], vocabulary: list[str]):
    """A ``WhisperSpec`` holding ``arrays`` (names as in model.bin)."""
    from ctranslate2.specs import WhisperSpec
    from ctranslate2.specs.model_spec import index_spec

    arch = architecture(header)
    dec_heads = int(arrays["decoder/num_heads"]) if "decoder/num_heads" in arrays else arch.heads
    spec = WhisperSpec(arch.encoder_layers, arch.heads, arch.decoder_layers, dec_heads)
    for name, value in arrays.items():
        scope, _, attr = name.rpartition("/")
        try:
            layer = index_spec(spec, scope) if scope else spec
            current = getattr(layer, attr)
        except (AttributeError, KeyError, IndexError):
            raise CorruptModelError(f"{header.path}: variable {name!r} does not fit a WhisperSpec") from None
        if value.ndim == 0 and current is not None and not isinstance(current, str):
            value = np.dtype(getattr(current, "dtype", value.dtype)).type(value)
        setattr(layer, attr, value)
    for alias, target in header.aliases:
        scope, _, attr = alias.rpartition("/")
        setattr(index_spec(spec, scope), attr, arrays[target])
    spec.register_vocabulary(vocabulary)
    return spec


def read_vocabulary(model_dir: Path) -> list[str]:
    import json

    if (model_dir / "vocabulary.json").is_file():
        return json.loads((model_dir / "vocabulary.json").read_text(encoding="utf-8"))
    if (model_dir / "vocabulary.txt").is_file():
        return (model_dir / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:-1] or []
    raise CorruptModelError(f"{model_dir}: no vocabulary.json or vocabulary.txt")


def save_atomic(spec, target: Path, carry_from: Path | None, extra_files: dict[str, str] | None = None) -> Path:
    """Save ``spec`` (quantization already applied) to ``target`` atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        spec.save(str(tmp))
        if carry_from is not None:
            for name in CARRY:
                src = carry_from / name
                # the source's config.json (alignment heads, suppressed tokens, language ids)
                # replaces the default one the spec writes; the rest only fill gaps
                if src.is_file() and (name == "config.json" or not (tmp / name).exists()):
                    shutil.copy2(src, tmp / name)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
        try:
            os.rename(tmp, target)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY) and (target / "model.bin").is_file():
                logger.info("%s was written by another process meanwhile; keeping that one", target)
                shutil.rmtree(tmp, ignore_errors=True)
                return target
            raise
        return target
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno == errno.ENOSPC:
            raise DiskFullError(f"no space left on the device while writing {target} (nothing was kept)") from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def quantize_model(resolved: ResolvedModel, precision: str, model_dir: Path, *, force: bool = False) -> Path:
    """Write (once) and return the stored ``precision`` copy of ``resolved``."""
    if precision not in STORABLE:
        from leanspeech.errors import UnknownPrecisionError

        raise UnknownPrecisionError(precision, STORABLE)
    if precision in ("bfloat16", "int8_bfloat16"):
        try:
            import torch  # noqa: F401  (ctranslate2.specs converts to bfloat16 through torch)
        except ImportError:
            raise OptionalDependencyError("torch", "torch", f"storing weights as {precision}") from None
    if resolved.synthetic:
        pass  # synthetic models can be stored at any precision too; they stay marked
    target = quantized_path(model_dir, resolved, precision)
    if (target / "model.bin").is_file() and not force:
        return target
    if force and target.exists():
        shutil.rmtree(target)
    header = read_header(resolved.path)
    arrays = read_arrays(header)
    spec = build_spec(header, arrays, read_vocabulary(resolved.path))
    del arrays
    spec.validate()
    spec.optimize(quantization=precision)
    extra = {"SOURCE": f"{resolved.name}\n{resolved.path}\n{precision}\n"}
    if resolved.synthetic:
        extra["SYNTHETIC"] = (resolved.path / "SYNTHETIC").read_text(encoding="utf-8")
    path = save_atomic(spec, target, resolved.path, extra)
    logger.info("Stored %s at %s in %s", resolved.name, precision, path)
    return path


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def stored_copy(resolved: ResolvedModel, compute_type: str, model_dir: Path, create: bool) -> ResolvedModel:
    """The stored ``compute_type`` copy of ``resolved`` if there is one (or ``create``: made
    now, where it can be stored); else ``resolved``. A failed copy never stops the load."""
    if compute_type not in STORABLE or resolved.source.startswith("stored"):
        return resolved
    path = quantized_path(model_dir, resolved, compute_type)
    if not (path / "model.bin").is_file():
        if not create or compute_type in ("bfloat16", "int8_bfloat16"):
            return resolved
        try:
            path = quantize_model(resolved, compute_type, model_dir)
        except Exception as exc:  # a failed copy must never stop the load itself
            logger.warning(
                "Could not store a %s copy of %s: %s; loading the original", compute_type, resolved.name, exc
            )
            return resolved
    logger.info("Using the stored %s copy of %s: %s", compute_type, resolved.name, path)
    return ResolvedModel(resolved.name, path, f"stored-{compute_type}", resolved.entry)
