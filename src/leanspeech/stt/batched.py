"""Long files in VAD-cut windows, decoded in batches that fit a memory bound.

Why not faster-whisper's ``BatchedInferencePipeline`` as is: it encodes a whole batch of
30 s windows at once. The encoder's self-attention scores take ``heads x 1500 x 1500``
float32 values per window (54 MB for tiny), so batch 8 took 2.3x the peak RSS of the
sequential mode for a 1.9x speed-up on 2 cores. On CPU the encoder gains little from
batching, the decoder (small matrices, many steps) gains a lot. So here each window is
encoded alone, the encoder outputs are stacked, and only the decode is batched, with the
batch cut to what ``batch_memory`` allows for the model's size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..audio import SAMPLE_RATE
from ..models.catalog import Architecture
from .engine import WhisperEngine
from .options import TranscribeOptions
from .result import Segment, segment_from_fw

WINDOW_S = 30.0
FALLBACK_TEMPERATURES = (0.2, 0.4, 0.6, 0.8, 1.0)
PREPEND = "\"'“¿([{-"
APPEND = "\"'.。,，!！?？:：”)]}、"


@dataclass
class Window:
    audio: np.ndarray
    offset: float  # start in the (VAD-collapsed) timeline, seconds
    duration: float


def window_bytes(arch: Architecture, beam_size: int, activation_bytes: int = 4) -> int:
    """Estimated memory one window adds to a batched decode: its encoder output, the
    cross-attention keys and values every decoder layer keeps for it, and the beams'
    self-attention cache at full length."""
    ctx, d, layers = arch.n_audio_ctx, arch.d_model, arch.decoder_layers
    encoder_out = ctx * d * 4  # stacked on the host in float32
    cross = 2 * layers * ctx * d * activation_bytes
    self_cache = beam_size * 2 * layers * arch.n_text_ctx * d * activation_bytes
    return encoder_out + cross + self_cache


def batch_limit(arch: Architecture, options: TranscribeOptions, activation_bytes: int = 4) -> int:
    """How many windows to decode at once: ``batch_size`` cut to fit ``batch_memory``."""
    if options.batch_size <= 1:
        return 1
    if options.batch_memory is None:
        return options.batch_size
    fit = options.batch_memory // max(1, window_bytes(arch, options.beam_size, activation_bytes))
    return int(max(1, min(options.batch_size, fit)))


def vad_windows(audio: np.ndarray, options: TranscribeOptions) -> tuple[list[Window], list[dict] | None]:
    """Cut audio into windows of at most 30 s. With VAD, silence is dropped and speech is
    merged into windows; returns the speech chunks needed to map times back."""
    if not options.vad:
        step = int(WINDOW_S * SAMPLE_RATE)
        windows = [
            Window(audio[i : i + step], i / SAMPLE_RATE, min(step, audio.shape[0] - i) / SAMPLE_RATE)
            for i in range(0, audio.shape[0], step)
        ]
        return windows, None
    from faster_whisper.vad import VadOptions, collect_chunks

    from .vad import speech_timestamps

    params = {"min_silence_duration_ms": 160, **options.vad_parameters, "max_speech_duration_s": WINDOW_S}
    chunks = speech_timestamps(audio, VadOptions(**params))
    if not chunks:
        return [], chunks
    pieces, metadata = collect_chunks(audio, chunks, max_duration=WINDOW_S)
    return [Window(p, m["offset"], m["duration"]) for p, m in zip(pieces, metadata) if p.shape[0]], chunks


def _compression_ratio(text: str) -> float:
    from faster_whisper.transcribe import get_compression_ratio

    return get_compression_ratio(text) if text else 0.0


def _generate(engine: WhisperEngine, encoded: list[np.ndarray], prompts: list[list[int]], options, temperature: float, tokenizer):
    from faster_whisper.transcribe import get_suppressed_tokens

    model = engine.model
    return model.model.generate(
        engine.stack(encoded),
        prompts,
        beam_size=options.beam_size if temperature == 0 else 1,
        num_hypotheses=1,
        sampling_temperature=max(temperature, 1e-6) if temperature > 0 else 1.0,
        sampling_topk=0 if temperature > 0 else 1,
        max_length=model.max_length,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        return_scores=True,
        return_no_speech_prob=True,
    )


def _decoded(result, tokenizer) -> dict:
    tokens = result.sequences_ids[0]
    text = tokenizer.decode([t for t in tokens if t < tokenizer.eot])
    length = len(tokens)
    return {
        "tokens": tokens,
        "avg_logprob": result.scores[0] * length / (length + 1),
        "no_speech_prob": result.no_speech_prob,
        "compression_ratio": _compression_ratio(text),
    }


def _needs_fallback(out: dict, options: TranscribeOptions) -> bool:
    return (
        out["compression_ratio"] > options.compression_ratio_threshold
        or out["avg_logprob"] < options.log_prob_threshold
    ) and out["no_speech_prob"] <= options.no_speech_threshold


def decode_batch(
    engine: WhisperEngine,
    encoded: list[np.ndarray],
    windows: list[Window],
    tokenizer,
    options: TranscribeOptions,
) -> list[list[dict]]:
    """Decode a batch of encoded windows; one list of segment dicts (with words) per window,
    times on the collapsed timeline.

    The decode runs without timestamp tokens: with them, Whisper often closes a window
    early (a final timestamp, then end-of-text, with speech still to come), which the
    sequential loop repairs by seeking but a batch cannot; in our measurement on a 3-minute
    file that dropped whole sentences (WER 5.5% against 1.1%). Times come instead from one
    batched alignment pass (cross-attention DTW, the word-timestamp machinery), and
    segments are cut from the words. Windows that look like hallucination loops are decoded
    again alone at rising temperatures, as Whisper does."""
    model = engine.model
    previous = tokenizer.encode(" " + options.initial_prompt.strip()) if options.initial_prompt else []
    prompt = model.get_prompt(tokenizer, previous, without_timestamps=True)
    results = _generate(engine, encoded, [prompt] * len(encoded), options, options.temperature, tokenizer)
    outputs = [_decoded(r, tokenizer) for r in results]
    for i, out in enumerate(outputs):
        out["temperature"] = options.temperature
        for temperature in (t for t in FALLBACK_TEMPERATURES if t > options.temperature):
            if not _needs_fallback(out, options):
                break
            retry = _decoded(_generate(engine, [encoded[i]], [prompt], options, temperature, tokenizer)[0], tokenizer)
            retry["temperature"] = temperature
            out = outputs[i] = retry

    per_window: list[list[dict]] = []
    sizes = []
    for window, out in zip(windows, outputs):
        silent = out["no_speech_prob"] > options.no_speech_threshold and out["avg_logprob"] < options.log_prob_threshold
        tokens = [t for t in out["tokens"] if t < tokenizer.eot]
        sizes.append(int(math.ceil(window.duration) * model.frames_per_second))
        if silent or not tokens:
            per_window.append([])
            continue
        per_window.append(
            [
                {
                    "text": tokenizer.decode(tokens),
                    "tokens": tokens,
                    "start": window.offset,
                    "end": window.offset + window.duration,
                    "seek": round(window.offset * model.frames_per_second),
                    "avg_logprob": out["avg_logprob"],
                    "no_speech_prob": out["no_speech_prob"],
                    "compression_ratio": out["compression_ratio"],
                    "temperature": out["temperature"],
                }
            ]
        )
    # Aligned one window at a time: the alignment pass keeps every head's attention over
    # 1500 frames, and batching it raised the peak by ~90 MB for no gain on CPU.
    # ``without_timestamps`` skips it (0.15 s a window for tiny on 2 cores): each window is
    # then one segment spanning the window, which is all a plain-text answer needs.
    for i, window_segments in enumerate(per_window):
        if window_segments and not options.without_timestamps:
            model.add_word_timestamps([window_segments], tokenizer, engine.stack([encoded[i]]), [sizes[i]], PREPEND, APPEND, 0.0)
            for seg in window_segments:
                for word in seg.get("words") or ():
                    # faster-whisper drops each word's tokens; segments cut from words need them
                    word["tokens"] = tokenizer.encode(word["word"])
    return per_window


SENTENCE_END = (".", "?", "!", "。", "？", "！")
MAX_SEGMENT_S = 15.0


def split_segments(window_segment: dict, chunk_of: Callable[[float], int] | None) -> list[dict]:
    """Cut one window's text into segments at sentence ends, at VAD pauses (a word in a
    different speech chunk than the one before) and at ``MAX_SEGMENT_S``."""
    words = window_segment.get("words") or []
    if not words:
        return [window_segment] if window_segment.get("tokens") and "words" not in window_segment else []
    out: list[dict] = []
    current: list[dict] = []

    def flush() -> None:
        if current:
            seg = dict(window_segment)
            seg["words"] = list(current)
            seg["text"] = "".join(w["word"] for w in current)
            seg["tokens"] = [t for w in current for t in w.get("tokens", ())]
            seg["start"], seg["end"] = current[0]["start"], current[-1]["end"]
            out.append(seg)
            current.clear()

    for word in words:
        if current:
            previous = current[-1]
            new_chunk = chunk_of is not None and chunk_of(word["start"]) != chunk_of(previous["end"])
            too_long = word["end"] - current[0]["start"] > MAX_SEGMENT_S
            if previous["word"].strip().endswith(SENTENCE_END) or new_chunk or too_long:
                flush()
        current.append(word)
    flush()
    return out


def restore_times(segments: list[dict], chunks: list[dict] | None) -> list[dict]:
    """Map segment (and word) times from the VAD-collapsed timeline back to the file's."""
    if not chunks:
        return segments
    from faster_whisper.vad import SpeechTimestampsMap

    ts_map = SpeechTimestampsMap(chunks, SAMPLE_RATE)
    for seg in segments:
        if seg.get("words"):
            for word in seg["words"]:
                idx = ts_map.get_chunk_index((word["start"] + word["end"]) / 2)
                word["start"] = ts_map.get_original_time(word["start"], idx)
                word["end"] = ts_map.get_original_time(word["end"], idx)
            seg["start"], seg["end"] = seg["words"][0]["start"], seg["words"][-1]["end"]
        else:
            seg["start"] = ts_map.get_original_time(seg["start"])
            seg["end"] = ts_map.get_original_time(seg["end"], is_end=True)
    return segments


@dataclass
class Plan:
    """A file cut into windows, and what is needed to put its segments back together."""

    windows: list[Window]
    chunks: list[dict] | None
    speech_s: float

    def chunk_of(self) -> Callable[[float], int] | None:
        if not self.chunks:
            return None
        from faster_whisper.vad import SpeechTimestampsMap

        return SpeechTimestampsMap(self.chunks, SAMPLE_RATE).get_chunk_index


def plan(audio: np.ndarray, options: TranscribeOptions) -> Plan:
    windows, chunks = vad_windows(audio, options)
    return Plan(windows, chunks, sum(w.duration for w in windows))


def assemble(per_window: list[list[dict]], plan_: Plan, options: TranscribeOptions) -> list[Segment]:
    """Window results (in window order) -> the file's segments on its own timeline."""
    chunk_of = plan_.chunk_of()
    segments: list[dict] = []
    for window_segments in per_window:
        for seg in window_segments:
            segments.extend(split_segments(seg, chunk_of))
    restore_times(segments, plan_.chunks)
    if not options.word_timestamps:
        for seg in segments:
            seg["words"] = None
    return [segment_from_fw(s, i + 1) for i, s in enumerate(segments)]


def transcribe_batched(
    engine: WhisperEngine,
    audio: np.ndarray,
    options: TranscribeOptions,
    progress: Callable[[float], None] | None = None,
) -> tuple[list[Segment], str, float, int, float]:
    """Returns (segments, language, language probability, batch used, seconds after VAD)."""
    p = plan(audio, options)
    if not p.windows:
        return [], options.language or "en", 0.0, 0, 0.0
    limit = batch_limit(engine.arch, options, engine.activation_bytes)
    language, probability = options.language, 1.0
    per_window: list[list[dict]] = []
    done = 0.0
    for start in range(0, len(p.windows), limit):
        batch = p.windows[start : start + limit]
        encoded = [engine.encode(engine.features(w.audio)) for w in batch]
        if language is None:
            language, probability = engine.detect_language(encoded[0])
        tokenizer = engine.tokenizer(language, options.task)
        per_window.extend(decode_batch(engine, encoded, batch, tokenizer, options))
        del encoded
        done += sum(w.duration for w in batch)
        if progress is not None:
            progress(min(1.0, done / p.speech_s))
    return assemble(per_window, p, options), language or "en", probability, limit, p.speech_s
