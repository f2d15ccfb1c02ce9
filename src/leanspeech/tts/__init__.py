from leanspeech.tts.synthesizer import Synthesizer

__all__ = ["Synthesizer"]
