"""Audio decoding and PCM helpers, on PyAV (FFmpeg). Everything is 16 kHz mono float32
unless a function says otherwise."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import AudioFileNotFoundError, EmptyAudioError, InvalidAudioError

SAMPLE_RATE = 16000

AudioInput = str | os.PathLike | bytes | BinaryIO | np.ndarray


def decode_audio(source: AudioInput, sampling_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode any FFmpeg-readable audio to mono float32 at ``sampling_rate``.

    An ``np.ndarray`` is taken as already-decoded mono audio at ``sampling_rate``.
    Raises ``InvalidAudioError`` for data that is not audio, ``EmptyAudioError`` for audio
    with no samples and ``AudioFileNotFoundError`` for a missing path.
    """
    if isinstance(source, np.ndarray):
        audio = np.asarray(source, dtype=np.float32)
        return _check(audio.mean(axis=0) if audio.ndim == 2 else audio.reshape(-1), "array")
    opened, name = _opened(source)
    from faster_whisper.audio import decode_audio as fw_decode_audio  # PyAV, s16 resample, skips bad frames

    try:
        audio = fw_decode_audio(opened, sampling_rate=sampling_rate)
    except Exception as exc:  # FFmpeg raises a zoo of av.error.* types (and none for a missing stream)
        raise InvalidAudioError(f"{name}: not decodable audio ({_short(exc)})") from None
    return _check(np.asarray(audio, dtype=np.float32), name)


def decode_channels(source: AudioInput, sampling_rate: int = SAMPLE_RATE) -> list[np.ndarray]:
    """Each channel of a stereo file on its own (a mono file: one channel), 16 kHz float32.
    An ``np.ndarray`` of shape (channels, samples) is taken as decoded channels. Files with
    more than two channels are mixed down to two first."""
    if isinstance(source, np.ndarray):
        audio = np.asarray(source, dtype=np.float32)
        return [_check(row, "array") for row in (audio if audio.ndim == 2 else audio.reshape(1, -1))]
    opened, name = _opened(source)
    from faster_whisper.audio import decode_audio as fw_decode_audio

    try:
        import av

        with av.open(opened, metadata_errors="ignore") as container:
            channels = container.streams.audio[0].channels
        if not isinstance(opened, str):
            opened.seek(0)
        if channels < 2:
            return [_check(np.asarray(fw_decode_audio(opened, sampling_rate=sampling_rate), np.float32), name)]
        left, right = fw_decode_audio(opened, sampling_rate=sampling_rate, split_stereo=True)
    except Exception as exc:
        raise InvalidAudioError(f"{name}: not decodable audio ({_short(exc)})") from None
    return [_check(np.asarray(left, np.float32), name), _check(np.asarray(right, np.float32), name)]


def _opened(source: AudioInput) -> tuple[str | BinaryIO, str]:
    """What PyAV can open, and a name for messages; missing and empty inputs fail here."""
    name = "upload"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = str(path)
        if not path.exists():
            raise AudioFileNotFoundError(f"{path}: no such file")
        if path.is_dir():
            raise InvalidAudioError(f"{path}: is a directory, not an audio file")
        if path.stat().st_size == 0:
            raise EmptyAudioError(f"{path}: the file is empty (0 bytes)")
        opened: str | BinaryIO = str(path)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise EmptyAudioError("the upload is empty (0 bytes)")
        opened = io.BytesIO(bytes(source))
    else:
        opened = source
    return opened, name


def _short(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _check(audio: np.ndarray, name: str) -> np.ndarray:
    if audio.size == 0:
        raise EmptyAudioError(f"{name}: the audio has no samples (zero length)")
    if not np.isfinite(audio).all():
        raise InvalidAudioError(f"{name}: the audio contains NaN or infinite samples")
    return audio


def _s16_to_float(array: np.ndarray) -> np.ndarray:
    return (array.reshape(-1).astype(np.float32) / 32768.0).astype(np.float32)


def resample(audio: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono float32 audio with FFmpeg's resampler."""
    if from_rate == to_rate:
        return np.asarray(audio, dtype=np.float32)
    import av

    frame = av.AudioFrame.from_ndarray(
        float_to_int16(audio).reshape(1, -1), format="s16", layout="mono"
    )
    frame.sample_rate = from_rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=to_rate)
    parts = [f.to_ndarray() for f in resampler.resample(frame)]
    parts += [f.to_ndarray() for f in resampler.resample(None)]
    return _s16_to_float(np.concatenate(parts, axis=1)) if parts else np.zeros(0, np.float32)


def float_to_int16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def write_wav(path: str | os.PathLike, audio: np.ndarray, sampling_rate: int = SAMPLE_RATE) -> None:
    """Write mono float32 audio as a 16-bit PCM WAV file."""
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sampling_rate)
        out.writeframes(float_to_int16(audio).tobytes())

