from .options import TranscribeOptions
from .result import Segment, Timings, Transcription, TranscriptionInfo, Word
from .transcriber import Transcriber

__all__ = ["Segment", "Timings", "TranscribeOptions", "Transcriber", "Transcription", "TranscriptionInfo", "Word"]
