"""Domain exceptions. Each one names the bad value and, where there is a closed set,
the valid choices, so that the CLI and the server can show it as a one-line message."""

from __future__ import annotations

from collections.abc import Iterable


def _choices(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


class LeanspeechError(Exception):
    """Base class for every error leanspeech raises on purpose.

    ``kind`` is a stable machine-readable code; the server maps it to an HTTP status in
    one place (``leanspeech.server.errors``).
    """

    kind = "leanspeech_error"
    param: str | None = None


class InvalidAudioError(LeanspeechError):
    """The input is not decodable audio (corrupt, not audio, unsupported container)."""

    kind = "invalid_audio"
    param = "file"


class EmptyAudioError(InvalidAudioError):
    """The input decodes to zero samples."""

    kind = "empty_audio"


class AudioTooLongError(LeanspeechError):
    """The audio lasts longer than the caller's limit (its container said so, or decoding found it)."""

    kind = "audio_too_long"
    param = "file"


class AudioFileNotFoundError(InvalidAudioError):
    kind = "file_not_found"


class UnknownModelError(LeanspeechError):
    kind = "model_not_found"
    param = "model"

    def __init__(self, name: str, known: Iterable[str]):
        self.name = name
        super().__init__(
            f"unknown model {name!r}: not a local model directory and not a catalog name "
            f"(known: {_choices(known)})"
        )


class InvalidModelNameError(LeanspeechError):
    kind = "invalid_model_name"
    param = "model"


class ModelNotAvailableError(LeanspeechError):
    """A catalog model that has no local copy and cannot be downloaded (offline)."""

    kind = "model_not_available"
    param = "model"


class CorruptModelError(LeanspeechError):
    kind = "corrupt_model"
    param = "model"


class UnknownPrecisionError(LeanspeechError):
    kind = "invalid_precision"
    param = "precision"

    def __init__(self, value: str, known: Iterable[str]):
        self.value = value
        super().__init__(f"unknown precision {value!r} (valid: {_choices(known)})")


class UnknownDeviceError(LeanspeechError):
    kind = "invalid_device"
    param = "device"


class PrecisionUnsupportedError(LeanspeechError):
    """Strict mode: the requested precision cannot run as asked on this device."""

    kind = "precision_unsupported"
    param = "precision"


class InvalidOptionError(LeanspeechError):
    kind = "invalid_option"

    def __init__(self, message: str, param: str | None = None):
        self.param = param
        super().__init__(message)


class MemoryBudgetError(LeanspeechError):
    """A model load would exceed the configured memory budget even after unloading idle models."""

    kind = "memory_budget_exceeded"
    param = "model"


class OptionalDependencyError(LeanspeechError):
    kind = "missing_dependency"

    def __init__(self, package: str, extra: str, purpose: str):
        super().__init__(
            f"{purpose} needs the optional package {package!r}: "
            f"pip install 'leanspeech[{extra}]'"
        )
