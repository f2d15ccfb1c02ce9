"""Read CTranslate2's ``model.bin``.

The layout is the one ``ctranslate2.specs.ModelSpec._serialize`` writes (little-endian):

    u32 binary version
    str spec name          (str = u16 length incl. NUL, bytes, NUL)
    u32 spec revision
    u32 variable count
      str name, u8 rank, u32 dims[rank], u8 dtype id, u32 byte count, bytes
    u32 alias count
      str alias, str variable name

``read_header`` skips the weight bytes (it seeks), so it is cheap on a large model.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from leanspeech.errors import CorruptModelError

#: Order of CTranslate2's DataType enum (include/ctranslate2/types.h).
DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
DTYPE_SIZE = {"float32": 4, "int8": 1, "int16": 2, "int32": 4, "float16": 2, "bfloat16": 2}
SUPPORTED_VERSIONS = range(1, 7)


@dataclass(frozen=True)
class Variable:
    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    offset: int  # where the bytes start in the file

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class ModelBin:
    path: Path
    version: int
    spec_name: str
    revision: int
    variables: tuple[Variable, ...]
    aliases: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def by_name(self) -> dict[str, Variable]:
        return {v.name: v for v in self.variables}

    def bytes_by_dtype(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.variables:
            out[v.dtype] = out.get(v.dtype, 0) + v.nbytes
        return out

    @property
    def weight_dtype(self) -> str:
        """The dtype that holds most of the bytes: what the model is 'stored as'."""
        by = self.bytes_by_dtype()
        return max(by, key=lambda dtype: by[dtype]) if by else "unknown"


def _read_exact(fh: BinaryIO, n: int, what: str, path: Path) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise CorruptModelError(f"{path}: truncated model.bin (ended while reading {what})")
    return data


def _read_str(fh: BinaryIO, path: Path) -> str:
    (length,) = struct.unpack("<H", _read_exact(fh, 2, "a string length", path))
    if length == 0:
        raise CorruptModelError(f"{path}: corrupt model.bin (zero-length string)")
    raw = _read_exact(fh, length, "a string", path)
    if raw[-1:] != b"\x00":
        raise CorruptModelError(f"{path}: corrupt model.bin (string not NUL-terminated)")
    try:
        return raw[:-1].decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptModelError(f"{path}: corrupt model.bin (string is not UTF-8)") from None


def _iter_variables(fh: BinaryIO, count: int, path: Path, size: int) -> Iterator[Variable]:
    for _ in range(count):
        name = _read_str(fh, path)
        (rank,) = struct.unpack("<B", _read_exact(fh, 1, "a rank", path))
        shape = struct.unpack(f"<{rank}I", _read_exact(fh, 4 * rank, "a shape", path)) if rank else ()
        (dtype_id,) = struct.unpack("<B", _read_exact(fh, 1, "a dtype", path))
        if dtype_id >= len(DTYPES):
            raise CorruptModelError(f"{path}: corrupt model.bin (unknown dtype id {dtype_id} for {name!r})")
        dtype = DTYPES[dtype_id]
        (nbytes,) = struct.unpack("<I", _read_exact(fh, 4, "a byte count", path))
        numel = 1
        for d in shape:
            numel *= d
        if nbytes != numel * DTYPE_SIZE[dtype]:
            raise CorruptModelError(
                f"{path}: corrupt model.bin ({name!r}: {nbytes} bytes for shape {shape} of {dtype})"
            )
        offset = fh.tell()
        if offset + nbytes > size:
            raise CorruptModelError(f"{path}: truncated model.bin (variable {name!r} runs past the end)")
        fh.seek(nbytes, os.SEEK_CUR)
        yield Variable(name, tuple(shape), dtype, nbytes, offset)


def read_header(model_dir_or_file: str | os.PathLike) -> ModelBin:
    """Parse a model.bin's structure without loading its weights."""
    path = Path(model_dir_or_file)
    if path.is_dir():
        path = path / "model.bin"
    if not path.is_file():
        raise CorruptModelError(f"{path}: no model.bin")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        (version,) = struct.unpack("<I", _read_exact(fh, 4, "the version", path))
        if version not in SUPPORTED_VERSIONS:
            raise CorruptModelError(f"{path}: not a CTranslate2 model.bin (binary version {version})")
        spec_name = _read_str(fh, path) if version >= 2 else ""
        revision = struct.unpack("<I", _read_exact(fh, 4, "the revision", path))[0] if version >= 2 else 1
        (count,) = struct.unpack("<I", _read_exact(fh, 4, "the variable count", path))
        variables = tuple(_iter_variables(fh, count, path, size))
        aliases: list[tuple[str, str]] = []
        if version >= 3:
            (n_alias,) = struct.unpack("<I", _read_exact(fh, 4, "the alias count", path))
            for _ in range(n_alias):
                aliases.append((_read_str(fh, path), _read_str(fh, path)))
    return ModelBin(path, version, spec_name, revision, variables, tuple(aliases))


def is_quantizable(var: Variable) -> bool:
    """Weights that CTranslate2's converter quantizes for the int8/int16 types: the
    ``weight`` of linear, embedding and 1-D convolution layers (the specs that carry a
    ``weight_scale``), with one scale per output row/channel."""
    return var.name.endswith("/weight") and len(var.shape) >= 2


def weight_bytes_at(header: ModelBin, compute_type: str) -> int:
    return sum(weight_bytes_by_dtype(header, compute_type).values())


def weight_bytes_by_dtype(header: ModelBin, compute_type: str) -> dict[str, int]:
    """Bytes per dtype that the weights take in memory once loaded at ``compute_type``.

    int8 types store linear weights as int8 plus one float32 scale per output row; the
    rest of the variables take the float type after the underscore (float32 for plain int8).
    """
    float_type = {
        "float32": "float32", "float16": "float16", "bfloat16": "bfloat16", "int16": "float32",
        "int8": "float32", "int8_float32": "float32", "int8_float16": "float16", "int8_bfloat16": "bfloat16",
    }[compute_type]
    quantized = compute_type.startswith("int8") or compute_type == "int16"
    qtype = "int16" if compute_type == "int16" else "int8"
    out: dict[str, int] = {}

    def add(dtype: str, n: int) -> None:
        out[dtype] = out.get(dtype, 0) + n

    for var in header.variables:
        if var.name.endswith("_scale"):
            continue  # recomputed for the target type below
        if quantized and is_quantizable(var):
            add(qtype, var.numel * DTYPE_SIZE[qtype])
            add("float32", var.shape[0] * 4)  # one scale per output row
        elif var.dtype in ("float32", "float16", "bfloat16"):
            add(float_type, var.numel * DTYPE_SIZE[float_type])
        else:
            add(var.dtype, var.nbytes)  # scalar flags and int ids stay as they are
    return out


def read_scalar(header: ModelBin, name: str) -> int | None:
    """The value of a scalar integer variable (``encoder/num_heads`` and the like)."""
    var = header.by_name().get(name)
    if var is None or var.shape != ():
        return None
    fmt = {"int8": "<b", "int16": "<h", "int32": "<i"}.get(var.dtype)
    if fmt is None:
        return None
    with open(header.path, "rb") as fh:
        fh.seek(var.offset)
        return struct.unpack(fmt, fh.read(var.nbytes))[0]


def architecture(header: ModelBin):
    """The Whisper architecture of a model.bin, read from its variable shapes."""
    from leanspeech.models.catalog import Architecture

    if header.spec_name and header.spec_name != "WhisperSpec":
        raise CorruptModelError(f"{header.path}: not a Whisper model (spec {header.spec_name!r})")
    names = header.by_name()
    try:
        vocab, d_model = names["decoder/embeddings/weight"].shape
        n_mels = names["encoder/conv1/weight"].shape[1]
        positions = names.get("decoder/position_encodings/encodings")
        n_text_ctx = positions.shape[0] if positions is not None else 448
        n_audio_ctx = (
            names["encoder/position_encodings/encodings"].shape[0]
            if "encoder/position_encodings/encodings" in names
            else 1500
        )
    except KeyError as exc:
        raise CorruptModelError(f"{header.path}: not a Whisper model.bin (no {exc.args[0]!r})") from None

    def count(prefix: str) -> int:
        layers = set()
        for v in header.variables:
            parts = v.name.split("/")
            if parts[0] == prefix and len(parts) > 1 and re.fullmatch(r"layer_\d+", parts[1]):
                layers.add(parts[1])
        return len(layers)

    heads = read_scalar(header, "encoder/num_heads") or max(1, d_model // 64)
    return Architecture(d_model, heads, count("encoder"), count("decoder"), n_mels, vocab, n_audio_ctx, n_text_ctx)
