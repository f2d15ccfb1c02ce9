"""Encode int16 PCM to mp3, opus, aac, flac, wav or raw pcm with PyAV, chunk by chunk."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Iterator
from typing import cast

import numpy as np

from leanspeech.errors import InvalidOptionError

FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
MEDIA_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
               "wav": "audio/wav", "pcm": "audio/pcm"}
# container, codec, output rate (None = the voice's)
_CODECS = {"mp3": ("mp3", "libmp3lame", None), "opus": ("ogg", "libopus", 48000), "aac": ("adts", "aac", None),
           "flac": ("flac", "flac", None)}


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InvalidOptionError(f"unknown response_format {fmt!r} (valid: {', '.join(FORMATS)})", "response_format")
    return fmt


def wav_header(sample_rate: int, data_bytes: int = 0xFFFFFFFF - 36) -> bytes:
    """A WAV header; for streaming the sizes are 'unknown' (max), as most players accept."""
    return (b"RIFF" + struct.pack("<I", min(0xFFFFFFFF, data_bytes + 36)) + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
            + b"data" + struct.pack("<I", min(0xFFFFFFFF, data_bytes)))


class _Sink(io.RawIOBase):
    """A write-only, non-seekable output. Muxers that would seek back to rewrite a header at
    the end (mp3's Xing frame, FLAC's STREAMINFO) see that they cannot and write a streamable
    file instead; bytes handed out earlier are never rewritten."""

    def __init__(self):
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)


def encode_stream(pcm_chunks: Iterable[np.ndarray], fmt: str, sample_rate: int) -> Iterator[bytes]:
    """Yield encoded bytes as PCM chunks arrive (the first bytes leave before the text is done)."""
    check_format(fmt)
    if fmt == "pcm":
        for pcm in pcm_chunks:
            yield pcm.astype("<i2").tobytes()
        return
    if fmt == "wav":
        yield wav_header(sample_rate)
        for pcm in pcm_chunks:
            yield pcm.astype("<i2").tobytes()
        return
    import av

    container_fmt, codec, rate = _CODECS[fmt]
    buffer = _Sink()
    container = av.open(buffer, mode="w", format=container_fmt)
    stream = cast("av.AudioStream", container.add_stream(codec, rate=rate or sample_rate))
    stream.layout = "mono"
    resampler = av.AudioResampler(format=stream.codec_context.format.name if stream.codec_context.format else "s16",
                                  layout="mono", rate=rate or sample_rate)
    pts = 0

    def drain() -> bytes:
        data = b"".join(buffer.parts)
        buffer.parts.clear()
        return data

    for pcm in pcm_chunks:
        frame = av.AudioFrame.from_ndarray(pcm.astype(np.int16).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = pts
        pts += pcm.shape[0]
        for out in resampler.resample(frame):
            for packet in stream.encode(out):
                container.mux(packet)
        data = drain()
        if data:
            yield data
    for out in resampler.resample(None):
        for packet in stream.encode(out):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    data = drain()
    if data:
        yield data
