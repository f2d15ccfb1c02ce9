"""Raw PCM as protocols send it, to and from 16 kHz mono float32.

Protocol adapters get audio in many shapes: the OpenAI Realtime API sends 24 kHz 16-bit PCM
or 8 kHz G.711 (µ-law, A-law); Wyoming sends any rate, 1-4 byte samples and any channel
count. ``StreamConverter`` turns a stream of such chunks into 16 kHz mono float32, with one
resampler state for the whole stream (python-soxr), so chunk edges leave no clicks.
"""

from __future__ import annotations

import numpy as np

from leanspeech.errors import InvalidAudioError

SAMPLE_RATE = 16000
WIDTHS = (1, 2, 3, 4)


def _g711_ulaw_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign, exponent, mantissa = codes & 0x80, (codes >> 4) & 0x07, codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return (np.where(sign, -magnitude, magnitude) / 32768.0).astype(np.float32)


def _g711_alaw_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign, exponent, mantissa = codes & 0x80, (codes >> 4) & 0x07, codes & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return (np.where(sign, magnitude, -magnitude) / 32768.0).astype(np.float32)


#: G.711 code -> sample in [-1, 1] (ITU-T G.711; A-law codes are sent with even bits inverted)
ULAW = _g711_ulaw_table()
ALAW = _g711_alaw_table()


def g711_to_float(data: bytes, law: str) -> np.ndarray:
    table = ULAW if law == "ulaw" else ALAW
    return table[np.frombuffer(data, np.uint8)]


def int_to_float(data: bytes, width: int, channels: int = 1) -> np.ndarray:
    """Little-endian integer PCM (1 byte unsigned, 2-4 bytes signed), interleaved channels
    mixed to mono, as float32 in [-1, 1]."""
    if width not in WIDTHS:
        raise InvalidAudioError(f"sample width must be 1, 2, 3 or 4 bytes; got {width}")
    if channels < 1:
        raise InvalidAudioError(f"channel count must be at least 1; got {channels}")
    frame = width * channels
    if len(data) % frame:
        raise InvalidAudioError(f"audio of {channels} channel(s) of {width}-byte samples must be a multiple of "
                                f"{frame} bytes; got {len(data)} bytes")
    if width == 1:
        samples = (np.frombuffer(data, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        samples = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
    elif width == 4:
        samples = (np.frombuffer(data, "<i4").astype(np.float64) / 2**31).astype(np.float32)
    else:  # 24-bit: widen each 3-byte sample to 4 bytes, then shift the sign back down
        raw = np.frombuffer(data, np.uint8).reshape(-1, 3)
        wide = np.zeros((raw.shape[0], 4), np.uint8)
        wide[:, 1:] = raw
        samples = (wide.view("<i4").reshape(-1).astype(np.float64) / 2**31).astype(np.float32)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return samples


def float_to_int16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class StreamConverter:
    """One stream of PCM chunks (``rate``, ``width`` bytes per sample, ``channels``; or
    G.711 with ``law`` "ulaw"/"alaw") -> 16 kHz mono float32, chunk by chunk."""

    def __init__(self, rate: int, width: int = 2, channels: int = 1, law: str | None = None):
        if not 1000 <= rate <= 384000:
            raise InvalidAudioError(f"sample rate must be 1000..384000 Hz; got {rate}")
        if law not in (None, "ulaw", "alaw"):
            raise InvalidAudioError(f"unknown G.711 law {law!r} (ulaw or alaw)")
        self.rate, self.width, self.channels, self.law = rate, width, channels, law
        self.received_s = 0.0
        self._resampler = None
        if rate != SAMPLE_RATE:
            import soxr

            self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")

    def convert(self, data: bytes) -> np.ndarray:
        samples = g711_to_float(data, self.law) if self.law else int_to_float(data, self.width, self.channels)
        self.received_s += samples.shape[0] / self.rate
        if self._resampler is None:
            return samples
        return self._resampler.resample_chunk(samples)

    def flush(self) -> np.ndarray:
        """The resampler's last samples, at the end of the stream."""
        if self._resampler is None:
            return np.zeros(0, np.float32)
        return self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
