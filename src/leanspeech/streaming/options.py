"""What a live session is set up with (``LiveOptions``: the client's fields and the buffer's
bounds, checked when made) and the error past the buffer's bound. Every live front door
builds these; ``session.StreamingSession`` runs on them."""

from __future__ import annotations

from dataclasses import dataclass, field

from leanspeech.errors import InvalidOptionError, LeanspeechError
from leanspeech.stt.options import VAD_KEYS, TranscribeOptions


@dataclass(frozen=True, kw_only=True)
class LiveOptions:
    """Options of one live session (the WhisperLive client's fields, and the buffer's)."""

    language: str | None = None
    task: str = "transcribe"
    initial_prompt: str | None = None
    use_vad: bool = True
    vad_parameters: dict = field(default_factory=dict)
    no_speech_threshold: float = 0.45
    same_output_threshold: int = 10
    clip_audio: bool = False
    word_timestamps: bool = False
    send_last_n_segments: int = 10
    multilingual: bool = False  # detect the language of every decode, not once
    hotwords: str | None = None
    context_s: float = 10.0
    step_s: float = 0.5
    pause_s: float = 0.5
    beam_size: int = 1
    #: the encoder hears the buffer plus this much silence (rounded up to 5 s), not Whisper's
    #: 30 s window: a live buffer is at most ``context_s``, and most of a 30 s input would be
    #: padding (``TranscribeOptions.encoder_padding``; None: 30 s)
    encoder_padding: float | None = 5.0
    #: most seconds held ahead of the decoder (audio sent faster than it is decoded); past
    #: it ``feed`` raises ``LiveBufferFullError``: memory stays bounded whatever a client sends
    max_buffer_s: float = 60.0

    def __post_init__(self) -> None:
        if not 2.0 <= self.context_s <= 30.0:
            raise InvalidOptionError(f"context_s must be 2..30 seconds, got {self.context_s}", "context_s")
        if not 0.1 <= self.step_s <= self.context_s / 2:
            raise InvalidOptionError(f"step_s must be 0.1..context_s/2, got {self.step_s}", "step_s")
        if self.max_buffer_s < self.context_s:
            raise InvalidOptionError(f"max_buffer_s must be at least context_s ({self.context_s:g} s), got "
                                     f"{self.max_buffer_s}", "max_buffer_s")
        if not 0.1 <= self.pause_s <= 5.0:
            raise InvalidOptionError(f"pause_s must be 0.1..5 seconds, got {self.pause_s}", "pause_s")
        if not 0.0 <= self.no_speech_threshold <= 1.0:
            raise InvalidOptionError(
                f"no_speech_thresh must be 0..1, got {self.no_speech_threshold}", "no_speech_thresh"
            )
        if self.same_output_threshold < 1:
            raise InvalidOptionError("same_output_threshold must be at least 1", "same_output_threshold")
        if self.send_last_n_segments < 1:
            raise InvalidOptionError("send_last_n_segments must be at least 1", "send_last_n_segments")
        bad = sorted(set(self.vad_parameters) - set(VAD_KEYS))
        if bad:
            raise InvalidOptionError(
                f"unknown VAD parameter(s) {', '.join(bad)} (valid: {', '.join(VAD_KEYS)})", "vad_parameters"
            )
        self.transcribe_options()  # task, beam and language are checked there

    def transcribe_options(self) -> TranscribeOptions:
        """What each decode window is decoded with (shared with the batcher's grouping)."""
        return TranscribeOptions(
            beam_size=self.beam_size,
            language=self.language,
            task=self.task,
            vad=False,
            word_timestamps=True,
            initial_prompt=self.initial_prompt,
            batch_size=1,
            no_speech_threshold=self.no_speech_threshold,
            multilingual=self.multilingual,
            hotwords=self.hotwords,
            encoder_padding=self.encoder_padding,
        )


class LiveBufferFullError(LeanspeechError):
    """A live client sent audio faster than it can be decoded, past ``max_buffer_s``."""

    kind = "buffer_full"

    def __init__(self, ahead_s: float, limit_s: float):
        super().__init__(f"audio is arriving faster than it can be transcribed: {ahead_s:.1f} s wait for the "
                         f"decoder, over the limit of {limit_s:g} s (LEANSPEECH_LIVE__MAX_BUFFER_S); send audio "
                         "at real-time pace")
