"""leanspeech: speech models in as little memory as they need, with the measurements to prove it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("leanspeech")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"


def __getattr__(name: str):
    # Lazy, so that `import leanspeech` stays cheap (the CLI imports it for --help).
    if name in ("Transcriber", "TranscribeOptions", "Transcription", "Segment", "Word"):
        from leanspeech import stt

        return getattr(stt, name)
    raise AttributeError(name)


__all__ = ["Transcriber", "TranscribeOptions", "Transcription", "Segment", "Word", "__version__"]
