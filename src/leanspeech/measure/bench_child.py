"""One ``leanspeech bench`` configuration in a fresh process. Prints one JSON line.

Peaks are this process's alone: ``memory.peak_rss_lifetime`` (VmHWM) for RSS and an NVML sampler on CUDA.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from leanspeech.memory import peak_rss_lifetime
from leanspeech.models.store import ResolvedModel

#: transcribe(path) -> (text, audio seconds)
TranscribeFn = Callable[[str], tuple[str, float]]


def _leanspeech(resolved: ResolvedModel, config: dict, backend: str) -> tuple[TranscribeFn, str]:
    from leanspeech import Transcriber

    engine = Transcriber(str(resolved.path), device=config["device"], precision=config["precision"],
                         cpu_threads=config["threads"], beam_size=config["beam"], batch_size=config["batch"],
                         strict_precision=True, backend=backend)

    def transcribe(path: str) -> tuple[str, float]:
        result = engine.transcribe(path)
        return result.text, result.info.duration

    return transcribe, engine.resolution.compute_type


def _openai_whisper(resolved: ResolvedModel, config: dict) -> tuple[TranscribeFn, str]:
    import torch
    import whisper

    from leanspeech.audio import SAMPLE_RATE, decode_audio
    from leanspeech.devices import parse_device
    from leanspeech.models.export import ensure_export
    from leanspeech.models.store import default_model_dir

    if config["threads"]:
        torch.set_num_threads(config["threads"])
    checkpoint = ensure_export(resolved, default_model_dir(), "openai-whisper")
    model = whisper.load_model(str(checkpoint), device=parse_device(config["device"])[0])
    precision = config["precision"]

    def transcribe(path: str) -> tuple[str, float]:
        samples = decode_audio(path)
        out = whisper.transcribe(model, samples, beam_size=config["beam"] if config["beam"] > 1 else None,
                                 fp16=precision == "float16", verbose=None)
        return " ".join(s["text"].strip() for s in out["segments"]), samples.shape[0] / SAMPLE_RATE

    return transcribe, precision


def _faster_whisper(resolved: ResolvedModel, config: dict, batched: bool) -> tuple[TranscribeFn, str]:
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from leanspeech.devices import parse_device
    from leanspeech.precision import resolve

    # an anchor at a precision the device cannot run fails like leanspeech does (strict),
    # instead of CTranslate2 converting silently under the anchor's label
    resolve(config["device"], config["precision"], strict=True)
    kind, index = parse_device(config["device"])
    model = WhisperModel(str(resolved.path), device=kind, device_index=index, compute_type=config["precision"],
                         cpu_threads=config["threads"])
    pipeline = BatchedInferencePipeline(model) if batched else None

    def transcribe(path: str) -> tuple[str, float]:
        if pipeline is not None:
            segments, info = pipeline.transcribe(path, beam_size=config["beam"], batch_size=config["batch"])
        else:
            segments, info = model.transcribe(path, beam_size=config["beam"])
        return " ".join(s.text.strip() for s in segments), info.duration

    return transcribe, config["precision"]


def _engine(resolved: ResolvedModel, config: dict) -> tuple[TranscribeFn, str]:
    kind = config["engine"]
    if kind in ("leanspeech", "leanspeech-torch"):
        return _leanspeech(resolved, config, "torch" if kind == "leanspeech-torch" else "ctranslate2")
    if kind == "openai-whisper":
        return _openai_whisper(resolved, config)
    return _faster_whisper(resolved, config, batched=kind == "faster-whisper-batched")


def _measure(transcribe: TranscribeFn, files: list[str], repeat: int) -> list[dict]:
    per_file = []
    for path in files:
        walls, text, duration = [], "", 0.0
        for _ in range(repeat):
            t = time.perf_counter()
            text, duration = transcribe(path)
            walls.append(time.perf_counter() - t)
        per_file.append({"file": path, "text": text, "audio_s": duration, "wall_s": statistics.median(walls),
                         "wall_runs": walls})
        print(f"leanspeech-progress {len(per_file)} {len(files)} {duration:.3f}", file=sys.stderr, flush=True)
    return per_file


def main() -> None:
    from leanspeech.devices import parse_device
    from leanspeech.memory import GpuPeakSampler, torch_memory
    from leanspeech.models.quantize import dir_bytes
    from leanspeech.models.store import resolve_model

    config = json.loads(sys.argv[1])
    files = json.loads(sys.argv[2])
    repeat = int(sys.argv[3])
    resolved = resolve_model(config["model"], offline=True)
    kind, index = parse_device(config["device"])
    gpu = GpuPeakSampler(index) if kind == "cuda" else None
    with gpu if gpu is not None else contextlib.nullcontext():
        start = time.perf_counter()
        transcribe, effective = _engine(resolved, config)
        load_s = time.perf_counter() - start
        per_file = _measure(transcribe, files, repeat)
    print(json.dumps({
        "torch_memory": torch_memory(),
        "load_s": load_s, "disk_bytes": dir_bytes(Path(resolved.path)), "effective_precision": effective,
        "peak_rss": peak_rss_lifetime(),
        "gpu_peak": gpu.peak if gpu is not None else None, "files": per_file,
    }))


if __name__ == "__main__":
    main()
