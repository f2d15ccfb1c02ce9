"""Stored precision variants of a Piper ONNX model, each made once and cached on disk.

- float32: the original file.
- float16: ONNX Runtime's ``convert_float_to_float16`` (``onnxruntime.transformers.float16``),
  with the graph's inputs and outputs kept float32 and the ops that need float32 kept in
  float32: ONNX Runtime's default block list plus the random sampling and ranges of the VITS
  graph. (onnxconverter-common's converter produced a graph that failed type checks on a
  Cast node, and with Cast blocked it ran for over half an hour without finishing.)
- int8: ONNX Runtime's dynamic quantization (weights int8, activations quantized on the fly).

Writes go to a temporary file in the same directory and are renamed into place.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from leanspeech.errors import LeanspeechError, OptionalDependencyError
from leanspeech.tts.voices import VoiceFiles

logger = logging.getLogger(__name__)

TTS_PRECISIONS = ("float32", "float16", "int8")
KEEP_FLOAT32 = ["RandomNormalLike", "RandomUniformLike", "Range", "CumSum"]


class _quiet:
    """Silence the converters' per-tensor warnings (root logger and ``warnings``)."""

    def __enter__(self):
        import warnings

        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore")
        self._level = logging.root.level
        logging.disable(logging.WARNING)
        return self

    def __exit__(self, *exc):
        logging.disable(logging.NOTSET)
        self._warnings.__exit__(*exc)


def variant_path(model_dir: Path, voice: VoiceFiles, precision: str) -> Path:
    if precision == "float32":
        return voice.onnx
    return Path(model_dir) / "voices" / f"{voice.name}-{precision}.onnx"


def _atomic_write(target: Path, write) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def make_variant(voice: VoiceFiles, precision: str, model_dir: Path) -> Path:
    """The ``precision`` variant of ``voice`` (made on first use, then reused)."""
    if precision not in TTS_PRECISIONS:
        from leanspeech.errors import UnknownPrecisionError

        raise UnknownPrecisionError(precision, TTS_PRECISIONS)
    target = variant_path(model_dir, voice, precision)
    if target.is_file():
        return target
    logger.info("Making the %s variant of voice %s", precision, voice.name)
    if precision == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        def quantize(tmp: str) -> None:
            with _quiet():  # the quantizer logs a warning per integer tensor it skips
                quantize_dynamic(str(voice.onnx), tmp, weight_type=QuantType.QInt8)

        return _atomic_write(target, quantize)
    try:
        import onnx
        from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
    except ImportError as exc:
        raise OptionalDependencyError(exc.name or "onnx", "tts", "the float16 voice variant") from None

    def write(tmp: str) -> None:
        model = onnx.load(str(voice.onnx))
        with _quiet():
            converted = convert_float_to_float16(model, keep_io_types=True,
                                                 op_block_list=[*DEFAULT_OP_BLOCK_LIST, *KEEP_FLOAT32])
        onnx.save(converted, tmp)

    try:
        return _atomic_write(target, write)
    except Exception as exc:
        raise LeanspeechError(f"could not make the float16 variant of {voice.name}: {exc}") from exc


#: How much smaller each variant's file is than the float32 file (en_US-joe-medium; the
#: docs, benchmark "Text-to-speech by precision").
SIZE_RATIO = {"float32": 1.0, "float16": 2.0, "int8": 3.4}
#: Resident bytes of a loaded voice against its file: ONNX Runtime holds the weights once
#: more than the file, plus its arena (read off a loaded voice's RSS after a first synthesis).
RESIDENT_RATIO = 1.6


def estimated_bytes(model_dir: Path, voice: VoiceFiles, precision: str) -> int:
    """What the voice at ``precision`` takes once loaded, before it is loaded (or made)."""
    path = variant_path(model_dir, voice, precision)
    if path.is_file():
        return int(path.stat().st_size * RESIDENT_RATIO)
    return int(voice.onnx.stat().st_size * RESIDENT_RATIO / SIZE_RATIO[precision])
