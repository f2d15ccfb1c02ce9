"""``Transcriber``: the public speech-to-text API of the library."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from leanspeech.audio import SAMPLE_RATE, AudioInput, AudioStream, SplitChannels, decode_audio
from leanspeech.diarize.request import DiarizeRequest, make_request
from leanspeech.errors import InvalidAudioError, InvalidOptionError
from leanspeech.memory import PeakSampler
from leanspeech.models.store import resolve_model
from leanspeech.precision import Resolution
from leanspeech.stt.backends import load_engine
from leanspeech.stt.blocks import Feed, SegmentStream
from leanspeech.stt.channels import transcribe_split
from leanspeech.stt.decode_loop import DirectDecoder, transcription_info
from leanspeech.stt.engine import Engine
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.result import Segment, Segments, Transcription, TranscriptionInfo
from leanspeech.tuning.malloc import MMAP_THRESHOLD

if TYPE_CHECKING:
    from leanspeech.diarize.campplus import CamPlus

logger = logging.getLogger(__name__)


class Transcriber:
    """Speech-to-text with a Whisper model on CTranslate2 (or, with ``backend="torch"``, on
    PyTorch/transformers with the same weights: ``pip install 'leanspeech[torch]'``).

    >>> t = Transcriber("tiny.en", precision="int8")
    >>> t.transcribe("speech.flac").text

    ``model`` is a catalog name (``leanspeech models list``) or a local CTranslate2 model
    directory. ``encoder_padding``: give the encoder a short window's audio plus this many
    seconds (rounded up to 5 s) instead of Whisper's 30 s. The process-wide knobs are set once,
    before the model's threads start (``tuning``): ``malloc_arenas`` (arenas the threads share;
    0 leaves glibc's default), ``malloc_mmap_threshold`` (bytes from which an allocation gets its
    own mapping; 0 leaves glibc's rising threshold), ``blas_threads`` (numpy's BLAS threads; 0
    leaves the library's own). ``heap_trim``: hand free heap pages back to the OS around each
    group's encodes and decode. Each keeps a long file's peak flat in its length; what each one
    measured: docs, "Long files and batching" and the benchmark pages it links.
    Every keyword of ``TranscribeOptions`` can be given here (the defaults of this
    transcriber) or per call to ``transcribe``."""

    def __init__(
        self,
        model: str = "tiny.en",
        *,
        device: str = "auto",
        precision: str = "auto",
        cpu_threads: int = 0,
        strict_precision: bool = False,
        model_dir: str | Path | None = None,
        offline: bool = False,
        quantize_on_disk: bool = False,
        engine: Engine | None = None,
        backend: str = "ctranslate2",
        encoder_padding: float | None = None,
        malloc_arenas: int = 2,
        malloc_mmap_threshold: int = MMAP_THRESHOLD,
        blas_threads: int = 1,
        heap_trim: bool = True,
        diarize: bool = False,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        **options: Any,
    ):
        from leanspeech.tuning import configure

        self.options = TranscribeOptions(**options)
        self.heap_trim = heap_trim
        self.model_dir = Path(model_dir) if model_dir else None
        self._speaker_model: CamPlus | None = None
        #: every call diarizes (``diarize=True`` here: the CLI, batch jobs and their Ray workers)
        self.speakers = make_request(num_speakers=num_speakers, min_speakers=min_speakers,
                                     max_speakers=max_speakers) if diarize else None
        configure(malloc_arenas=malloc_arenas, malloc_mmap_threshold=malloc_mmap_threshold,
                  blas_threads=blas_threads)  # before the model's threads start
        if engine is None:
            from leanspeech.stt.backends import check_backend

            check_backend(backend, precision)  # before the model is resolved or downloaded
            directory = Path(model_dir) if model_dir else None
            resolved = resolve_model(model, model_dir=directory, offline=offline)
            engine = load_engine(resolved, backend=backend, device=device, precision=precision,
                                 cpu_threads=cpu_threads, strict=strict_precision, model_dir=directory,
                                 quantize_on_disk=quantize_on_disk)
        self.engine: Engine = engine
        if encoder_padding is not None:
            if not hasattr(engine, "encoder_pad_s"):
                from leanspeech.errors import InvalidOptionError

                raise InvalidOptionError(f"encoder_padding needs the ctranslate2 backend (not {engine.backend})",
                                         "encoder_padding")
            engine.encoder_pad_s = encoder_padding

    @property
    def resolution(self) -> Resolution:
        return self.engine.resolution

    def close(self) -> None:
        self.engine.close()
        if self._speaker_model is not None:
            self._speaker_model.close()
            self._speaker_model = None

    def __enter__(self) -> Transcriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transcribe(
        self,
        audio: AudioInput,
        *,
        progress: Callable[[float], None] | None = None,
        diarize: bool | None = None,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        known_speakers: dict[str, AudioInput] | None = None,
        **overrides: Any,
    ) -> Transcription:
        """Transcribe a file path, bytes, a file object or a 16 kHz mono float32 array (with
        ``channels="split"``, an array of shape (channels, samples) is taken as channels).

        ``progress`` is called with the fraction of the audio done (0..1). ``diarize``: label
        each segment (cut where the speaker changes) and word with its speaker (A, B, ...),
        optionally within speaker bounds, and naming ``known_speakers`` (name: a 2-10 s clip);
        needs ``pip install 'leanspeech[diarize]'`` (``leanspeech.diarize``). None: this
        transcriber's own ``diarize``.
        """
        options = self.options.with_(**overrides) if overrides else self.options
        self.engine.check_options(options)
        asked = (num_speakers, min_speakers, max_speakers, known_speakers)
        if diarize or (diarize is None and any(a is not None for a in asked)):
            request = make_request(num_speakers=num_speakers, min_speakers=min_speakers, max_speakers=max_speakers,
                                   known_speakers=dict(known_speakers or {}))
            return self._diarized(audio, options, progress, request)
        if diarize is None and self.speakers is not None:
            return self._diarized(audio, options, progress, self.speakers)
        with PeakSampler() as sampler:
            if options.channels == "split":
                result = self._split(audio, options, progress)
            else:
                stream = self._stream(audio, options, progress)
                result = Transcription(tuple(stream), stream.info)
        return Transcription(result.segments, replace(result.info, peak_rss=sampler.peak))

    def _diarized(self, audio: AudioInput, options: TranscribeOptions, progress: Callable[[float], None] | None,
                  request: DiarizeRequest) -> Transcription:
        """Who spoke when (the audio read once for it), then the transcript with word times
        (read again), labelled (``diarize.labels``)."""
        from leanspeech.diarize.diarizer import diarize, voice_print
        from leanspeech.diarize.labels import label, word_options

        if options.channels == "split":
            raise InvalidOptionError("channels=split labels each channel as a speaker; it cannot be combined with "
                                     "diarize", "channels")
        model = self.speaker_model()
        prints = {name: voice_print(model, clip) for name, clip in request.known.items()}
        with PeakSampler() as sampler:
            speakers = diarize(model, AudioStream(_rewound(audio)), request.bounds, prints)
            stream = self._stream(_rewound(audio), word_options(options), progress)
            result = label(Transcription(tuple(stream), stream.info), speakers)
        return Transcription(result.segments, replace(result.info, peak_rss=sampler.peak))

    def speaker_model(self) -> CamPlus:
        """CAM++ (``leanspeech.diarize``), loaded on first use and kept with the transcriber."""
        if self._speaker_model is None:
            from leanspeech.diarize.campplus import CamPlus, ensure_onnx
            from leanspeech.models.store import default_model_dir

            self._speaker_model = CamPlus(ensure_onnx(self.model_dir or default_model_dir()))
        return self._speaker_model

    def segments(self, audio: AudioInput, *, progress: Callable[[float], None] | None = None,
                 **overrides: Any) -> Segments:
        """The segments of ``audio`` as they complete, reading a file piece by piece, so that
        memory stays flat however long the file (``stt/blocks.py``):

        >>> stream = t.segments("meeting.mp3")
        >>> for segment in stream:
        ...     print(segment.start, segment.text)
        >>> stream.info.duration

        ``info`` is there once the iteration is over. Sequential decoding (``batch_size=0``)
        ``channels="split"`` and diarizing transcribe the whole audio first and then give its
        segments.
        """
        options = self.options.with_(**overrides) if overrides else self.options
        self.engine.check_options(options)
        if options.channels == "split" or self.speakers is not None:
            return _Finished(self.transcribe(audio, progress=progress, **overrides))
        return self._stream(audio, options, progress)

    def _split(self, audio: AudioInput, options: TranscribeOptions,
               progress: Callable[[float], None] | None) -> Transcription:
        """Each channel read block by block, one after another (``channels.transcribe_split``)."""

        def stream(source: AudioStream, channel: int, count: int) -> Segments:
            def part(fraction: float) -> None:
                if progress is not None:
                    progress((channel + fraction) / count)

            return self._stream(source, options, part)

        return transcribe_split(SplitChannels(audio), stream)

    def _stream(self, audio: AudioInput | AudioStream, options: TranscribeOptions,
                progress: Callable[[float], None] | None) -> Segments:
        """One track's segments: read and decoded block by block, or (sequential) read whole
        and given to faster-whisper's own loop."""
        source = audio if isinstance(audio, AudioStream) else AudioStream(audio)
        if self._sequential(options):
            return _Finished(self._sequential_track(source, options, progress))
        batch = self.engine.max_batch(options)
        return SegmentStream(self.engine, source, options, self._decoder(),
                             Feed(group=batch, batch_size=batch, duration=source.duration, progress=progress))

    def _decoder(self) -> DirectDecoder:
        """The decoder of every file path: in this thread, the heap trimmed if ``heap_trim``."""
        return DirectDecoder(self.engine, trim=self.heap_trim)

    def _sequential(self, options: TranscribeOptions) -> bool:
        """faster-whisper's own loop (``batch_size=0`` on CTranslate2): it takes the whole file.
        Not where leanspeech's loop checks each window's language (``decode_loop.checks_language``):
        faster-whisper's keeps the first window's for the file."""
        from leanspeech.stt.decode_loop import checks_language

        return (options.batch_size == 0 and self.engine.backend == "ctranslate2" and not options.multilingual
                and not checks_language(self.engine, options))

    def _sequential_track(self, source: AudioStream, options: TranscribeOptions,
                          progress: Callable[[float], None] | None) -> Transcription:
        """faster-whisper's loop takes the whole track: it is read whole first."""
        from leanspeech.stt.ct2_engine import CT2Engine
        from leanspeech.stt.sequential import transcribe_sequential

        engine = self.engine
        assert isinstance(engine, CT2Engine)
        start = time.perf_counter()
        pieces = list(source)
        samples = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        del pieces
        segments, language, probability, speech_s = transcribe_sequential(engine, samples, options, progress)
        info = transcription_info(engine, options, duration=samples.shape[0] / SAMPLE_RATE, speech_s=speech_s,
                                  language=language, language_probability=probability, batch_size=0,
                                  decode_s=time.perf_counter() - start)
        return Transcription(tuple(segments), info)

    def transcribe_many(self, audios: Iterable[AudioInput], **overrides: Any
                        ) -> Iterator[tuple[int, Transcription | Exception]]:
        """Transcribe many inputs, the windows of several files decoded together (``stt/many_files.py``):
        yields ``(index, transcription)`` as each file completes (not in input order), or
        ``(index, exception)`` for a file that cannot be read. Sequential decoding
        (``batch_size=0``), ``channels="split"`` and a diarizing transcriber go file by file."""
        options = self.options.with_(**overrides) if overrides else self.options
        self.engine.check_options(options)
        if options.batch_size == 0 or options.channels == "split" or self.speakers is not None:
            for index, audio in enumerate(audios):
                try:
                    yield index, self.transcribe(audio, **overrides)
                except (InvalidAudioError, OSError) as exc:
                    yield index, exc
            return
        from leanspeech.stt.many_files import transcribe_many

        yield from transcribe_many(self.engine, audios, options, group=max(1, self.engine.max_batch(options)),
                                   read=decode_audio, decoder=self._decoder())

def _rewound(audio: AudioInput) -> AudioInput:
    """A file object at its start again (read once per pass); anything else as it is."""
    seek = getattr(audio, "seek", None)
    if seek is not None and not isinstance(audio, np.ndarray):
        seek(0)
    return audio


class _Finished:
    """The segments of a transcription already done, given out the way a stream is."""

    def __init__(self, result: Transcription):
        self.result = result

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.result.segments)

    @property
    def info(self) -> TranscriptionInfo:
        return self.result.info
