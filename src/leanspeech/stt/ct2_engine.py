"""A Whisper model on CTranslate2 (through faster-whisper's ``WhisperModel``), the precision
it really runs at, and how it encodes and decodes windows (the ``Engine`` protocol).

Windows are encoded one at a time on purpose: the encoder's self-attention scores take
heads x 1500 x 1500 floats per window, so encoding a batch multiplies the peak by the batch
size for little gain on CPU (docs, "Long files and batching"). Only the
decode is batched, cut to the memory bound (``models.sizing.batch_limit``).

The decode runs without timestamp tokens: with them, Whisper often closes a window early
(a final timestamp, then end-of-text, with speech still to come), which the sequential loop
repairs by seeking but a batch cannot. Times come instead from one alignment pass
(cross-attention DTW, faster-whisper's word-timestamp machinery), and segments are cut from
the words. Windows that look like hallucination loops are decoded again alone at rising
temperatures, as Whisper does.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from leanspeech.devices import DeviceInfo
from leanspeech.errors import InvalidModelNameError
from leanspeech.memory import PeakSampler, release_memory
from leanspeech.models.catalog import Architecture
from leanspeech.models.modelbin import architecture, read_header, weight_bytes_by_dtype
from leanspeech.models.quantize import stored_copy
from leanspeech.models.sizing import batch_limit
from leanspeech.models.store import ResolvedModel
from leanspeech.precision import Resolution, load_with_fallback, resolve
from leanspeech.stt import fallback
from leanspeech.stt.engine import EncodedWindow
from leanspeech.stt.languages import check_model_options
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.segments import TimedWord, WindowSegment
from leanspeech.stt.windows import Window
from leanspeech.tuning.load_thread import in_passing_thread

#: The granularity of a shortened encoder input (``CT2Engine.encoder_frames``), seconds.
ENCODER_BUCKET_S = 5

logger = logging.getLogger(__name__)

#: Most text tokens a window may yield per second of its audio (plus ``TOKENS_SLACK``): far
#: above speech (English ~5 a second; a CJK character can take 2-3 byte tokens), so that only
#: a loop meets it, and a short window that loops (a live partial cut inside a word) stops
#: after ~100 tokens, not Whisper's 448: one such decode and its temperature fallbacks took
#: 2-4 s of a live server's time with 4 clients, while every other session waited.
TOKENS_PER_S = 25
TOKENS_SLACK = 16
PREPEND = "\"'“¿([{-"
APPEND = "\"'.。,，!！?？:：”)]}、"


class CT2Engine:
    """One loaded model. Create with ``CT2Engine.load``; ``close()`` frees it."""

    backend = "ctranslate2"

    def __init__(self, resolved: ResolvedModel, resolution: Resolution, model: Any, load_s: float, load_rss: int,
                 model_dir: Path | None = None):
        self.resolved = resolved
        self.model_dir = model_dir
        self.resolution = resolution
        self.model: Any = model  # faster_whisper.WhisperModel; None once closed
        self.load_s = load_s
        self.load_rss = load_rss
        self.header = read_header(resolved.path)
        self.arch: Architecture = architecture(self.header)
        self.weight_bytes_by_dtype = weight_bytes_by_dtype(self.header, resolution.compute_type)
        self.weight_bytes = sum(self.weight_bytes_by_dtype.values())
        self._tokenizers: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        #: Seconds of padding after a window's audio that the encoder sees (None: every window
        #: padded to Whisper's 30 s, as Whisper was trained). See ``encoder_frames``.
        self.encoder_pad_s: float | None = None

    # ---- lifetime -------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        resolved: ResolvedModel,
        *,
        device: str = "auto",
        precision: str = "auto",
        cpu_threads: int = 0,
        strict: bool = False,
        devices: Iterable[DeviceInfo] | None = None,
        model_dir: Path | None = None,
        quantize_on_disk: bool = False,
        allow_synthetic: bool = False,
    ) -> CT2Engine:
        """Load ``resolved`` at the precision that ``(device, precision)`` resolves to.

        With ``model_dir``, a copy stored at that precision (``leanspeech models quantize``)
        is used when present, and ``quantize_on_disk`` creates it on the first load.
        Synthetic models (random weights) are refused unless ``allow_synthetic``.
        """
        from faster_whisper import WhisperModel

        if resolved.synthetic and not allow_synthetic:
            raise InvalidModelNameError(
                f"{resolved.path} is a synthetic model (random weights, made by 'leanspeech models synth'): "
                "it measures memory and speed only and is never used to transcribe"
            )
        architecture(read_header(resolved.path))  # a corrupt or foreign model.bin fails here, clearly
        resolution = resolve(device, precision, devices=devices, strict=strict)
        if model_dir is not None:
            resolved = stored_copy(resolved, resolution.compute_type, Path(model_dir), quantize_on_disk)

        def _load(compute_type: str) -> Any:
            model = WhisperModel(
                str(resolved.path),  # CTranslate2 rejects pathlib.Path here
                device=resolution.device,
                device_index=resolution.device_index,
                compute_type=compute_type,
                cpu_threads=cpu_threads,
            )
            if resolution.device == "cuda":
                _probe(model)  # some GPUs only reject int8 GEMMs when they first run
            return model

        start = time.perf_counter()
        with PeakSampler(0.02) as sampler:
            # on the CPU in a thread of its own that ends with the load (``tuning.load_thread``)
            model, final = in_passing_thread(lambda: load_with_fallback(resolution, _load, strict=strict,
                                                                        devices=devices),
                                             device=resolution.device)
        load_s = time.perf_counter() - start
        engine = cls(resolved, final, model, load_s, sampler.peak - sampler.start, model_dir)
        logger.info("Loaded %s from %s (%s) in %.2fs", resolved.name, resolved.path, resolved.source, load_s)
        return engine

    def close(self) -> None:
        """Drop the model and hand its memory back to the OS."""
        model, self.model = self.model, None
        if model is not None:
            try:
                model.model.unload_model()
            except Exception:  # pragma: no cover - older CTranslate2
                pass
            del model
        self._tokenizers.clear()
        release_memory()

    @property
    def closed(self) -> bool:
        return self.model is None

    # ---- facts ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.resolved.name

    @property
    def multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    def max_batch(self, options: TranscribeOptions) -> int:
        return batch_limit(self.arch, batch_size=options.batch_size, beam_size=options.beam_size,
                           batch_memory=options.batch_memory, compute_type=self.resolution.compute_type)

    def check_options(self, options: TranscribeOptions) -> None:
        """Languages and tasks an English-only model cannot honour are refused."""
        check_model_options(self.name, self.multilingual, options, self.model_dir)

    def tokenizer(self, language: str | None, task: str) -> Any:
        """The tokenizer for ``language`` and ``task`` (English-only models: always English)."""
        from faster_whisper.tokenizer import Tokenizer

        if not self.multilingual:
            language = "en"
        key = (language or "en", task)
        with self._lock:
            if key not in self._tokenizers:
                self._tokenizers[key] = Tokenizer(self.model.hf_tokenizer, self.multilingual, task=task,
                                                  language=key[0])
            return self._tokenizers[key]

    # ---- the Engine protocol --------------------------------------------------------

    def encoder_frames(self, seconds: float, pad_s: float | None = None) -> int:
        """Mel frames the encoder sees for ``seconds`` of audio: 3000 (30 s), or with a
        padding (``pad_s``, else ``encoder_pad_s``) the audio plus that padding, rounded up to
        ``ENCODER_BUCKET_S`` (so that windows of similar length share a decode batch), at most 3000.
        The encoder's cost on a CPU is linear in its input; whether the text holds with less is
        measured in ``benchmarks/encoder_padding.py`` (docs, its benchmark page)."""
        pad = pad_s if pad_s is not None else self.encoder_pad_s
        if pad is None:
            return 3000
        span = math.ceil((seconds + pad) / ENCODER_BUCKET_S) * ENCODER_BUCKET_S
        return int(min(3000, span * 100))

    def encode(self, window: Window, span_s: float | None = None, pad_s: float | None = None) -> np.ndarray:
        """Encoder output of one window, on the host: (frames / 2, d_model) float32.
        ``span_s``: encode as if the window were that long (at least its own length), so
        that a group of windows has encoder outputs of one length and decodes together.
        ``pad_s``: the padding (``encoder_frames``)."""
        import ctranslate2

        frames = self.encoder_frames(max(window.duration, span_s or 0.0), pad_s)
        features = self.model.feature_extractor(window.audio)[..., :-1][..., :frames]
        features = np.pad(features, ((0, 0), (0, frames - features.shape[-1])))
        # contiguous: [..., :-1] is a strided view, and StorageView needs contiguous memory
        features = np.ascontiguousarray(features[None])
        out = self.model.model.encode(ctranslate2.StorageView.from_array(features), to_cpu=True)
        return np.array(out, dtype=np.float32)[0]

    def detect_language(self, encoded: np.ndarray) -> tuple[str, float]:
        if not self.multilingual:
            return "en", 1.0
        token, prob = self.model.model.detect_language(_stack([encoded]))[0][0]
        return token[2:-2], float(prob)

    def detect_speech_language(self, audio: np.ndarray, min_s: float = 10.0) -> tuple[str, float]:
        """Padded to ``min_s`` (10 s), not to 30 s: the encoder's cost grows with its input, and
        10 s of frames told the language nearly as often as 30 s (docs, "Languages")."""
        import ctranslate2

        if not self.multilingual:
            return "en", 1.0
        features = self.model.feature_extractor(audio)[..., :-1]
        least = int(min_s * 100)  # mel frames
        frames = min(3000, max(least + least % 2, features.shape[-1] + features.shape[-1] % 2))  # even
        features = np.pad(features, ((0, 0), (0, max(0, frames - features.shape[-1]))))[:, :frames]
        out = self.model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])))
        token, prob = self.model.model.detect_language(out)[0][0]
        return token[2:-2], float(prob)

    def decode(self, items: Sequence[EncodedWindow], options: TranscribeOptions) -> list[list[WindowSegment]]:
        """Decode a batch of encoded windows (languages may differ: each has its own prompt)."""
        return cast(list[list[WindowSegment]], self.decode_parts(items, [None] * len(items), options))

    def decode_parts(self, items: Sequence[EncodedWindow], spans: Sequence[Sequence[tuple[float, float]] | None],
                     options: TranscribeOptions) -> list[list[WindowSegment | None]]:
        """Decode windows that hold several parts side by side (``packing``; each window's parts
        as (start, end) on its timeline) and give each part its own segment, on the part's own
        timeline (from 0), or None where the caller must decode the part again alone. A window
        whose spans are None is an ordinary one, decoded in the same call as ``decode`` does
        (its list: its segments), so that packed and unpacked windows share one batch.

        Which text was heard in which part: each window is decoded and aligned as usual, and
        each word goes to the part its aligned middle falls in (``packing.assign``); a part
        with no words (Whisper can skip one), the parts on both sides of a word that spans a
        whole gap, and every part of a window that sounds silent come back None. Each part's
        text is then aligned again on the part's own frames of the encoder output, for its
        word times: aligned over the whole window, tiny.en's cross-attention drifts across
        the gaps.

        Tried and left: Whisper's timestamp tokens to tell the parts apart (tiny.en's times
        ran across the gaps, and nearly half the parts came back None), and a word's
        probability on its part's own frames to catch a word given to the wrong part (a
        part's first word scores as low when it is right as when it is not)."""
        from leanspeech.stt.packing import assign

        tokenizers = [self.tokenizer(it.language, options.task) for it in items]
        prompts = [self._prompt(tok, options) for tok in tokenizers]
        # a packed window's own fallback would judge its parts' texts together: two requests
        # that say the same words compress well together and look like a loop. Each part is
        # judged on its own instead, and what fails comes back None: decoded again by the caller
        # (alone at once for files, ``many_files``; packed again, then alone, in the server's batcher),
        # and alone the fallback runs as usual.
        outputs = self._outputs(items, prompts, tokenizers, options, retry=[parts is None for parts in spans])
        per_item: list[list[WindowSegment | None]] = []
        per_second = self.model.frames_per_second // 2  # encoder frames (50/s)
        aligned = replace(options, without_timestamps=False)  # the words tell the parts apart
        for it, tok, out, parts in zip(items, tokenizers, outputs, spans, strict=True):
            tokens = [t for t in out["tokens"] if t < tok.eot]
            silent = fallback.silent(out, options) or not tokens
            if parts is None:
                per_item.append([] if silent else [self._segment(it.window, it.encoded, tok, tokens, out, options)])
                continue
            if silent:
                per_item.append([None] * len(parts))
                continue
            whole = self._segment(it.window, it.encoded, tok, tokens, out, aligned)
            texts = assign([(w.start, w.end, list(w.tokens)) for w in whole.words or ()], parts)
            results: list[WindowSegment | None] = []
            for (start, end), text in zip(parts, texts, strict=True):
                if text is None or fallback.needs_fallback(out, options, tok.decode(text)):
                    results.append(None)
                    continue
                first = round(start * per_second)
                frames = it.encoded[first : first + math.ceil(end - start) * per_second]
                window = Window(np.empty(0, np.float32), 0.0, end - start)
                results.append(self._segment(window, frames, tok, text, out, options, size=2 * frames.shape[0]))
            per_item.append(results)
        return per_item

    # ---- decoding internals ---------------------------------------------------------

    def _prompt(self, tokenizer: Any, options: TranscribeOptions) -> list[int]:
        previous = tokenizer.encode(" " + options.initial_prompt.strip()) if options.initial_prompt else []
        return list(self.model.get_prompt(tokenizer, previous, without_timestamps=True, hotwords=options.hotwords))

    def _outputs(self, items: Sequence[EncodedWindow], prompts: list[list[int]], tokenizers: list[Any],
                 options: TranscribeOptions, retry: Sequence[bool] | None = None) -> list[dict]:
        """One batched generate, then each window that looks like a loop again alone at rising
        temperatures (``fallback``; where ``retry`` says so: not packed windows); each at most
        ``max_length`` tokens."""
        encoded = [it.encoded for it in items]
        limits = [self.max_length(it.window.duration, len(p)) for it, p in zip(items, prompts, strict=True)]
        results = self._generate(encoded, prompts, options, options.temperature, max(limits))
        outputs = [fallback.decoded(r, tok, options.temperature) for r, tok in zip(results, tokenizers, strict=True)]
        for i, out in enumerate(outputs):
            if retry is not None and not retry[i]:
                continue
            for temperature in (t for t in fallback.FALLBACK_TEMPERATURES if t > options.temperature):
                if not fallback.needs_fallback(out, options):
                    break
                result = self._generate([encoded[i]], [prompts[i]], options, temperature, limits[i])[0]
                out = outputs[i] = fallback.decoded(result, tokenizers[i], temperature)
        return outputs

    def max_length(self, seconds: float, prompt_tokens: int) -> int:
        """What a window of ``seconds`` may generate, its prompt included (CTranslate2 counts
        it): ``TOKENS_PER_S`` a second, at most Whisper's text context."""
        return int(min(self.model.max_length, prompt_tokens + math.ceil(seconds * TOKENS_PER_S) + TOKENS_SLACK))

    def _generate(
        self, encoded: list[np.ndarray], prompts: list[list[int]], options: TranscribeOptions, temperature: float,
        max_length: int,
    ) -> list[Any]:
        from faster_whisper.transcribe import get_suppressed_tokens

        lengths = {e.shape[0] for e in encoded}
        if len(lengths) > 1:  # encoder outputs of different lengths: one generate call per length
            results: list[Any] = [None] * len(encoded)
            for length in lengths:
                idx = [i for i, e in enumerate(encoded) if e.shape[0] == length]
                part = self._generate([encoded[i] for i in idx], [prompts[i] for i in idx], options, temperature,
                                      max_length)
                for i, r in zip(idx, part, strict=True):
                    results[i] = r
            return results
        tokenizer = self.tokenizer(None, options.task)
        return list(
            self.model.model.generate(
                _stack(encoded),
                prompts,
                beam_size=options.beam_size if temperature == 0 else 1,
                num_hypotheses=1,
                sampling_temperature=max(temperature, 1e-6) if temperature > 0 else 1.0,
                sampling_topk=0 if temperature > 0 else 1,
                max_length=max_length,
                suppress_blank=True,
                suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
                return_scores=True,
                return_no_speech_prob=True,
            )
        )

    def _segment(self, window: Window, encoded: np.ndarray, tokenizer: Any, tokens: list[int], out: dict,
                 options: TranscribeOptions, size: int | None = None) -> WindowSegment:
        """``tokens`` (text only) heard in ``window`` as one segment, its words aligned on
        ``encoded`` (the window's encoder output; ``size``: its mel frames, else the window's
        length rounded up to a second) unless ``without_timestamps``."""
        seek = round(window.offset * self.model.frames_per_second)
        raw = {
            "text": tokenizer.decode(tokens),
            "tokens": tokens,
            "start": window.offset,
            "end": window.offset + window.duration,
            "seek": seek,
        }
        words: tuple[TimedWord, ...] | None = None
        # Aligned one window at a time: the alignment pass keeps every head's attention over
        # 1500 frames, so batching it raises the peak for no gain on CPU.
        # ``without_timestamps`` skips it: the window is then one segment spanning it, which
        # is all a plain-text answer needs.
        if not options.without_timestamps:
            size = size or int(math.ceil(window.duration) * self.model.frames_per_second)
            self.model.add_word_timestamps([[raw]], tokenizer, _stack([encoded]), [size], PREPEND, APPEND, 0.0)
            # faster-whisper drops each word's tokens; segments cut from words need them
            words = tuple(
                TimedWord(
                    str(w["word"]),
                    float(w["start"]),
                    float(w["end"]),
                    float(w["probability"]),
                    tuple(tokenizer.encode(w["word"])),
                )
                for w in raw.get("words") or ()
            )
        return WindowSegment(
            text=raw["text"],
            tokens=tuple(tokens),
            start=window.offset,
            end=window.offset + window.duration,
            seek=seek,
            avg_logprob=out["avg_logprob"],
            no_speech_prob=out["no_speech_prob"],
            compression_ratio=out["compression_ratio"],
            temperature=out["temperature"],
            words=words,
        )


def _stack(encoded: list[np.ndarray]) -> Any:
    import ctranslate2

    # A host StorageView; CTranslate2 copies it to the model's device when needed.
    return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack(encoded)))


def _probe(model: Any) -> None:
    """Run one tiny decode so that a precision the GPU rejects fails at load time."""
    import ctranslate2

    feats = np.zeros((1, model.model.n_mels, 3000), dtype=np.float32)
    enc = model.model.encode(ctranslate2.StorageView.from_array(feats))
    model.model.generate(enc, [[50258 if model.model.is_multilingual else 50257]], max_length=3)
