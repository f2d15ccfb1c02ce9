"""Audio decoding and PCM helpers, on PyAV (FFmpeg). Everything is 16 kHz mono float32
unless a function says otherwise."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from leanspeech.errors import AudioFileNotFoundError, AudioTooLongError, EmptyAudioError, InvalidAudioError

SAMPLE_RATE = 16000

AudioInput = str | os.PathLike | bytes | BinaryIO | np.ndarray


def decode_audio(source: AudioInput, sampling_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode any FFmpeg-readable audio to mono float32 at ``sampling_rate``, whole.

    An ``np.ndarray`` is taken as already-decoded mono audio at ``sampling_rate``.
    Raises ``InvalidAudioError`` for data that is not audio, ``EmptyAudioError`` for audio
    with no samples and ``AudioFileNotFoundError`` for a missing path. A long file is better
    read piece by piece with ``AudioStream``.
    """
    if isinstance(source, np.ndarray):
        audio = np.asarray(source, dtype=np.float32)
        return _check(audio.mean(axis=0) if audio.ndim == 2 else audio.reshape(-1), "array")
    return np.concatenate(list(AudioStream(source, sampling_rate)))


class AudioStream:
    """A file decoded piece by piece: iterating yields mono float32 pieces of about
    ``piece_s`` seconds at ``sampling_rate``, so that memory does not grow with the file.

    Opening reads the first piece, so that a missing, empty or undecodable input fails here
    (``AudioFileNotFoundError``, ``EmptyAudioError``, ``InvalidAudioError``) and not half way
    through. Frames FFmpeg cannot decode are skipped (as faster-whisper does). ``duration``
    is the container's own figure in seconds (None where it does not say); iterate once.
    An ``np.ndarray`` is taken as decoded audio and yielded in views of it.

    ``channel``: that channel alone (0 left, 1 right; more channels are mixed down to two
    first), else the channels mixed to mono. ``max_seconds``: ``AudioTooLongError`` when the
    container says the audio is longer (at opening, before any decoding) or when decoding
    passes it (a header can lie), so that no upload costs more than that much decoding.
    """

    def __init__(self, source: AudioInput, sampling_rate: int = SAMPLE_RATE, piece_s: float = 30.0, *,
                 channel: int | None = None, max_seconds: float | None = None):
        self.sampling_rate = sampling_rate
        self.samples = 0  # yielded so far
        self._piece = max(1, int(piece_s * sampling_rate))
        self._channel = channel
        self._max_samples = None if max_seconds is None else int(max_seconds * sampling_rate)
        self.max_seconds = max_seconds
        self.channels = 1
        self.duration: float | None
        if isinstance(source, np.ndarray):
            audio = decode_audio(source)
            self.name = "array"
            self.duration = audio.shape[0] / sampling_rate
            self._check_duration(self.duration)
            self._pieces: Iterator[np.ndarray] = (audio[i : i + self._piece]
                                                  for i in range(0, audio.shape[0], self._piece))
        else:
            opened, self.name = _opened(source)
            self._pieces = self._decoded(opened)
        self._first: np.ndarray | None = next(self._pieces, None)
        if self._first is None:
            raise EmptyAudioError(f"{self.name}: the audio has no samples (zero length)")

    def __iter__(self) -> Iterator[np.ndarray]:
        first, self._first = self._first, None
        if first is None:
            return
        self.samples += first.shape[0]
        yield first
        for piece in self._pieces:
            self.samples += piece.shape[0]
            yield piece

    def _check_duration(self, seconds: float | None, decoding: bool = False) -> None:
        if self.max_seconds is None or seconds is None or seconds <= self.max_seconds:
            return
        said = f"decodes to more than {seconds:.0f} s" if decoding else f"lasts {seconds:.0f} s"
        raise AudioTooLongError(f"{self.name}: the audio {said}, over the limit of {self.max_seconds:g} s")

    def close(self) -> None:
        """Close the container now (iterating to the end closes it too)."""
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()

    def _decoded(self, opened: str | BinaryIO) -> Iterator[np.ndarray]:
        import av

        try:
            container = av.open(opened, mode="r", metadata_errors="ignore")
        except Exception as exc:  # FFmpeg raises a zoo of av.error.* types
            raise InvalidAudioError(f"{self.name}: not decodable audio ({_short(exc)})") from None
        with container:
            if not container.streams.audio:
                raise InvalidAudioError(f"{self.name}: not decodable audio (no audio stream)")
            stream = container.streams.audio[0]
            self.channels = stream.channels or 1
            self.duration = _seconds(stream.duration, stream.time_base) or _seconds(container.duration, 1e-6)
            self._check_duration(self.duration)
            if self._channel is None or self.channels < 2:
                resampler = av.AudioResampler(format="s16", layout="mono", rate=self.sampling_rate)
            else:  # planar stereo: a row a channel
                resampler = av.AudioResampler(format="s16p", layout="stereo", rate=self.sampling_rate)
            row = 0 if self._channel is None or self.channels < 2 else min(self._channel, 1)
            held: list[np.ndarray] = []
            size = decoded = 0
            for frame in self._frames(container):
                for out in resampler.resample(frame):  # type: ignore[arg-type]
                    array = out.to_ndarray()
                    array = array[row] if array.ndim == 2 and array.shape[0] > 1 else array.reshape(-1)
                    held.append(array)
                    size += array.shape[0]
                    decoded += array.shape[0]
                if self._max_samples is not None and decoded > self._max_samples:
                    self._check_duration(decoded / self.sampling_rate, decoding=True)
                while size >= self._piece:
                    joined = np.concatenate(held)
                    yield _s16_to_float(joined[: self._piece])
                    held, size = [joined[self._piece :]], joined.shape[0] - self._piece
            if size:
                yield _s16_to_float(np.concatenate(held))

    def _frames(self, container) -> Iterator[object]:
        """The stream's frames, undecodable ones skipped, then None (flushes the resampler)."""
        import av

        frames = container.decode(audio=0)
        while True:
            try:
                yield next(frames)
            except StopIteration:
                break
            except av.error.InvalidDataError:
                continue
            except Exception as exc:
                raise InvalidAudioError(f"{self.name}: not decodable audio ({_short(exc)})") from None
        yield None


def _seconds(value: int | None, unit) -> float | None:
    return float(value * unit) if value else None


class SplitChannels:
    """Each channel of a file, to read one after another, each as an ``AudioStream`` (so a
    long stereo file is never whole in memory): ``channels`` is 1 for a mono file and 2
    otherwise (more are mixed down to two). An array of shape (channels, samples) is taken
    as decoded channels. A file object must be seekable: each channel reads it again."""

    def __init__(self, source: AudioInput, *, max_seconds: float | None = None):
        self.source = source
        self.max_seconds = max_seconds
        if isinstance(source, np.ndarray):
            audio = np.asarray(source, dtype=np.float32)
            self._arrays: list[np.ndarray] | None = list(audio if audio.ndim == 2 else audio.reshape(1, -1))
            self.channels = len(self._arrays)
            return
        self._arrays = None
        probe = self.open(0)
        self.channels = min(2, probe.channels)
        probe.close()

    def open(self, channel: int) -> AudioStream:
        if self._arrays is not None:
            return AudioStream(self._arrays[channel], max_seconds=self.max_seconds)
        if hasattr(self.source, "seek"):
            self.source.seek(0)
        return AudioStream(self.source, channel=channel, max_seconds=self.max_seconds)


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
        opened = source  # type: ignore[assignment]  # a file object (arrays never come here)
        if _remaining(opened) == 0:  # type: ignore[arg-type]
            raise EmptyAudioError("the upload is empty (0 bytes)")
    return opened, name


def _remaining(file: BinaryIO) -> int | None:
    """Bytes left in a seekable file object (None where it cannot tell)."""
    try:
        here = file.tell()
        end = file.seek(0, io.SEEK_END)
        file.seek(here)
    except (AttributeError, OSError, ValueError):
        return None
    return end - here


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

