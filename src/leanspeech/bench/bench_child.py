"""One ``leanspeech bench`` configuration in a fresh process. Prints one JSON line.

Peaks are this process's alone: ``ru_maxrss`` for RSS and an NVML sampler on CUDA.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from pathlib import Path


def _fw_model(model_path: str, device: str, index: int, precision: str, threads: int):
    from faster_whisper import WhisperModel

    return WhisperModel(model_path, device=device, device_index=index, compute_type=precision, cpu_threads=threads)


def main() -> None:
    config = json.loads(sys.argv[1])
    files = json.loads(sys.argv[2])
    repeat = int(sys.argv[3])
    from ..memory import GpuPeakSampler
    from ..models.quantize import dir_bytes
    from ..models.store import resolve_model

    resolved = resolve_model(config["model"], offline=True)
    device, _, idx = config["device"].partition(":")
    gpu = GpuPeakSampler(int(idx or 0)) if device == "cuda" else None
    if gpu:
        gpu.__enter__()
    start = time.perf_counter()
    kind = config["engine"]
    if kind == "leanspeech":
        from .. import Transcriber

        engine = Transcriber(str(resolved.path), device=config["device"], precision=config["precision"],
                             cpu_threads=config["threads"], beam_size=config["beam"], batch_size=config["batch"],
                             strict_precision=True)
        effective = engine.resolution.compute_type

        def transcribe(path):
            result = engine.transcribe(path)
            return result.text, result.info.duration
    elif kind == "leanspeech-torch":
        from .. import Transcriber

        engine = Transcriber(str(resolved.path), device=config["device"], precision=config["precision"],
                             cpu_threads=config["threads"], beam_size=config["beam"], batch_size=config["batch"],
                             strict_precision=True, backend="torch")
        effective = engine.resolution.compute_type

        def transcribe(path):
            result = engine.transcribe(path)
            return result.text, result.info.duration
    elif kind == "openai-whisper":
        import torch
        import whisper

        from ..audio import SAMPLE_RATE, decode_audio
        from ..config import default_model_dir
        from ..models.export import ensure_export

        if config["threads"]:
            torch.set_num_threads(config["threads"])
        checkpoint = ensure_export(resolved, default_model_dir(), "openai-whisper")
        model = whisper.load_model(str(checkpoint), device=device)
        effective = config["precision"]

        def transcribe(path):
            samples = decode_audio(path)
            out = whisper.transcribe(model, samples, beam_size=config["beam"] if config["beam"] > 1 else None,
                                     fp16=effective == "float16", verbose=None)
            return " ".join(s["text"].strip() for s in out["segments"]), samples.shape[0] / SAMPLE_RATE
    else:
        from ..precision import resolve

        # an anchor at a precision the device cannot run fails like leanspeech does (strict),
        # instead of CTranslate2 converting silently under the anchor's label
        resolve(config["device"], config["precision"], strict=True)
        model = _fw_model(str(resolved.path), device, int(idx or 0), config["precision"], config["threads"])
        effective = config["precision"]
        if kind == "faster-whisper-batched":
            from faster_whisper import BatchedInferencePipeline

            pipeline = BatchedInferencePipeline(model)

            def transcribe(path):
                segments, info = pipeline.transcribe(path, beam_size=config["beam"], batch_size=config["batch"])
                return " ".join(s.text.strip() for s in segments), info.duration
        else:
            def transcribe(path):
                segments, info = model.transcribe(path, beam_size=config["beam"])
                return " ".join(s.text.strip() for s in segments), info.duration
    load_s = time.perf_counter() - start
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
    gpu_peak = None
    if gpu:
        gpu.__exit__()
        gpu_peak = gpu.peak
    from ..stt.torch_engine import torch_memory

    print(json.dumps({
        "torch_memory": torch_memory(),
        "load_s": load_s, "disk_bytes": dir_bytes(Path(resolved.path)), "effective_precision": effective,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "gpu_peak": gpu_peak, "files": per_file,
    }))


if __name__ == "__main__":
    main()
