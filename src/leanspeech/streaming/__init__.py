"""Live transcription: ``StreamingSession`` (buffer, VAD, stabilized segments) and the
decoders that feed it. No web imports."""

from leanspeech.streaming.options import LiveOptions
from leanspeech.streaming.session import LiveSegment, LiveWindow, StreamingSession
from leanspeech.streaming.stream import stream_audio

__all__ = ["LiveOptions", "LiveSegment", "LiveWindow", "StreamingSession", "stream_audio"]
