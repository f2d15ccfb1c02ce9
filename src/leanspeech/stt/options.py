"""Transcription options: one frozen dataclass shared by the file, batched, streaming and
HTTP paths, so that they accept the same options."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from leanspeech.errors import InvalidOptionError

TASKS = ("transcribe", "translate")
CHANNELS = ("mono", "split")
VAD_KEYS = ("threshold", "neg_threshold", "min_speech_duration_ms", "max_speech_duration_s",
            "min_silence_duration_ms", "speech_pad_ms")


def language_codes() -> tuple[str, ...]:
    """The language codes Whisper knows (ISO 639-1, plus "haw", "jw", "yue")."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return tuple(_LANGUAGE_CODES)


def check_language(language: str | None) -> str | None:
    """``language`` cleaned (lower case, empty = None), or ``InvalidOptionError`` that lists
    the valid codes."""
    if language is None or not language.strip():
        return None
    code = language.strip().lower()
    if code not in language_codes():
        raise InvalidOptionError(f"unknown language {language!r} (valid: {', '.join(sorted(language_codes()))})",
                                 "language")
    return code


@dataclass(frozen=True, kw_only=True)
class TranscribeOptions:
    beam_size: int = 5
    language: str | None = None
    task: str = "transcribe"
    vad: bool = True
    vad_parameters: dict = field(default_factory=dict)
    word_timestamps: bool = False
    initial_prompt: str | None = None
    #: 0 = sequential (faster-whisper's own loop, with temperature fallback and
    #: conditioning on previous text); N = up to N VAD-cut windows decoded together,
    #: cut further to fit ``batch_memory``.
    batch_size: int = 8
    #: bytes the batched decode may add on top of one window's decode (None = no bound)
    batch_memory: int | None = 192 * 1024**2
    temperature: float = 0.0
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    without_timestamps: bool = False
    #: detect the language of every window (and cut windows where it changes), so that a
    #: file that switches languages comes back in each, every segment with its language
    multilingual: bool = False
    #: words to spell as given (product names, jargon): put before the prompt of every window
    hotwords: str | None = None
    #: "split": transcribe each channel of a stereo file alone, segments labelled by channel
    channels: str = "mono"
    #: many files at once (``Transcriber.transcribe_many``): pack short windows of several
    #: files into one 30-second window (``stt/packing.py``; CTranslate2, a known language)
    pack_files: bool = True
    #: a long file is read and planned this many seconds at a time (``stt/blocks.py``):
    #: memory holds one block of samples, whatever the file's length
    block_seconds: float = 300.0
    #: seconds of silence the encoder sees after a window's audio, rounded up to 5 s, instead
    #: of Whisper's 30-second window (CTranslate2; ``benchmarks/encoder_padding.py``). None:
    #: the model's own setting (``encoder_padding`` at load, off unless set)
    encoder_padding: float | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InvalidOptionError(f"unknown task {self.task!r} (valid: {', '.join(TASKS)})", "task")
        if not 1 <= self.beam_size <= 16:
            raise InvalidOptionError(f"beam_size must be 1..16, got {self.beam_size}", "beam_size")
        if not 0 <= self.batch_size <= 64:
            raise InvalidOptionError(f"batch_size must be 0..64, got {self.batch_size}", "batch_size")
        if not 0.0 <= self.temperature <= 1.0:
            raise InvalidOptionError(f"temperature must be 0..1, got {self.temperature}", "temperature")
        bad = sorted(set(self.vad_parameters) - set(VAD_KEYS))
        if bad:
            raise InvalidOptionError(
                f"unknown VAD parameter(s) {', '.join(bad)} (valid: {', '.join(VAD_KEYS)})", "vad_parameters"
            )
        if not 60.0 <= self.block_seconds <= 3600.0:
            raise InvalidOptionError(f"block_seconds must be 60..3600, got {self.block_seconds}", "block_seconds")
        if self.encoder_padding is not None and not 0.0 <= self.encoder_padding <= 30.0:
            raise InvalidOptionError(f"encoder_padding must be 0..30 seconds, got {self.encoder_padding}",
                                     "encoder_padding")
        if self.channels not in CHANNELS:
            raise InvalidOptionError(f"unknown channels {self.channels!r} (valid: {', '.join(CHANNELS)})", "channels")
        object.__setattr__(self, "language", check_language(self.language))
        if self.hotwords is not None:
            object.__setattr__(self, "hotwords", self.hotwords.strip() or None)

    def with_(self, **changes) -> TranscribeOptions:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict:
        return asdict(self)
