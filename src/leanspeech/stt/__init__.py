from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.result import Segment, Timings, Transcription, TranscriptionInfo, Word
from leanspeech.stt.transcriber import Transcriber

__all__ = ["Segment", "Timings", "TranscribeOptions", "Transcriber", "Transcription", "TranscriptionInfo", "Word"]
