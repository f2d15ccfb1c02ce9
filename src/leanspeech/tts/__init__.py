from .synthesizer import Synthesizer

__all__ = ["Synthesizer"]
