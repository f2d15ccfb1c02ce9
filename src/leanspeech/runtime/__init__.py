"""The core runtime every front door calls (no web code)."""

from leanspeech.runtime.runtime import Observers, Runtime

__all__ = ["Observers", "Runtime"]
