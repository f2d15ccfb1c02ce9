"""One ``leanspeech plan`` measurement, in a fresh process. Prints one JSON line."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

from leanspeech.memory import peak_rss_lifetime


def speech_window():
    """30 s of real speech (Piper corpus sentences, cached), padded or cut to 30 s."""
    import numpy as np

    from leanspeech.audio import decode_audio
    from leanspeech.measure.corpus import sentences_clip

    path, _ = sentences_clip(count=9, start=10, pause=0.3)
    audio = decode_audio(path)[: 16000 * 30]
    return np.ascontiguousarray(np.pad(audio, (0, 16000 * 30 - audio.shape[0])))


def special_ids(path: Path) -> tuple[list[int], int]:
    """(prompt, end-of-text id) from the model's own vocabulary. The prompt has
    <|notimestamps|>, so that no timestamp rule ends a decode early."""
    from leanspeech.models.quantize import read_vocabulary

    vocab = read_vocabulary(Path(path))
    return [vocab.index("<|startoftranscript|>"), vocab.index("<|notimestamps|>")], vocab.index("<|endoftext|>")


def _time_decodes(model, feats, prompts: list[list[int]], eot: int) -> tuple[dict[int, float], int]:
    """Seconds for one batch of windows, greedy and beam 5, and the tokens decoded."""
    import ctranslate2
    import numpy as np

    from leanspeech.measure.plan import TOKENS

    timings = {}
    tokens = 0
    single = ctranslate2.StorageView.from_array(np.ascontiguousarray(feats[None]))
    for beam in (1, 5):
        start = time.perf_counter()
        # As leanspeech runs it: each window encoded alone (the encoder's attention scores are
        # the big transient), the outputs stacked, and only the decode batched.
        outputs = [np.array(model.encode(single, to_cpu=True)) for _ in range(len(prompts))]
        encoded = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.concatenate(outputs)))
        # End-of-text suppressed, so real and synthetic models decode exactly TOKENS tokens.
        # CTranslate2 quirk: Whisper's generate() decodes at most max_length // 2 tokens
        # (openai-whisper's sample_len rule), so ask for twice as many.
        # Measure on an idle machine: a second CTranslate2 process on the same cores slows
        # these timings many times over (OpenMP threads spin-wait for a busy core).
        result = model.generate(encoded, prompts, beam_size=beam, max_length=2 * TOKENS, suppress_tokens=[eot])
        tokens = len(result[0].sequences_ids[0])
        timings[beam] = time.perf_counter() - start
        del encoded, outputs
    return timings, tokens


def main() -> None:
    from leanspeech.devices import parse_device
    from leanspeech.measure.plan import Config, estimate
    from leanspeech.memory import GpuPeakSampler, rss
    from leanspeech.models.catalog import CATALOG
    from leanspeech.models.store import local_sources
    from leanspeech.models.synth import build_synthetic

    config = Config(**json.loads(sys.argv[1]))
    model_dir = Path(sys.argv[2])
    entry = CATALOG[config.model]
    found = local_sources(entry, model_dir)
    path, synthetic = (found[0][1], False) if found else (build_synthetic(config.model, model_dir), True)

    import ctranslate2
    from faster_whisper.feature_extractor import FeatureExtractor

    from leanspeech.tuning.load_thread import in_passing_thread

    feats = FeatureExtractor(feature_size=entry.arch.n_mels)(speech_window())[:, :3000]
    baseline = rss()  # after imports and audio, before the model
    device, index = parse_device(config.device)
    gpu = GpuPeakSampler(index) if device == "cuda" else None
    with gpu if gpu is not None else contextlib.nullcontext():
        start = time.perf_counter()
        # as the server loads it: in a thread that ends with the load (load_thread.in_passing_thread)
        model = in_passing_thread(lambda: ctranslate2.models.Whisper(
            str(path), device=device, device_index=index, compute_type=config.precision,
            intra_threads=config.threads), device=device)
        load_s = time.perf_counter() - start
        prompt, eot = special_ids(path)
        timings, tokens = _time_decodes(model, feats, [prompt] * config.batch, eot)
    peak = peak_rss_lifetime()
    gpu_peak = gpu.peak if gpu is not None else None
    measured = gpu_peak if gpu_peak else peak
    est = estimate(config, path)
    model_part = (measured - (0 if gpu_peak else baseline))
    print(json.dumps({
        "synthetic": synthetic, "path": str(path), "load_s": load_s,
        "rtf_greedy": timings[1] / (30.0 * config.batch), "rtf_beam5": timings[5] / (30.0 * config.batch),
        "peak_bytes": measured, "peak_rss": peak, "gpu_peak": gpu_peak, "baseline_rss": baseline,
        "model_bytes": model_part, "estimate_bytes": est,
        "estimate_error": (est - model_part) / model_part if model_part > 0 else None,
        "tokens": tokens,
    }))


if __name__ == "__main__":
    main()
