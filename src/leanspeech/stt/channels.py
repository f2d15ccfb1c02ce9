"""Per-channel transcription of stereo audio (a call recorded with one speaker per channel):
each channel is transcribed alone, and the segments are labelled with their channel and
interleaved by time.

``transcribe_split`` is the one path of the server and of the library: each channel is read
and decoded block by block (``SegmentStream``), one channel after the other, so a long
stereo file costs the memory of one block, as a mono file does."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from leanspeech.audio import AudioStream, SplitChannels
from leanspeech.stt.result import Segment, Segments, Timings, Transcription, TranscriptionInfo

#: ``stream(source, channel, channels)``: the segment stream of one channel's audio.
StreamOf = Callable[[AudioStream, int, int], Segments]


def transcribe_split(split: SplitChannels, stream: StreamOf) -> Transcription:
    """Every channel of ``split`` through ``stream``, one after another; segments merged."""
    per_track: list[list[Segment]] = []
    infos: list[TranscriptionInfo] = []
    for channel in range(split.channels):
        source = split.open(channel)
        try:
            segments = stream(source, channel, split.channels)
            per_track.append(list(segments))
            infos.append(segments.info)
        finally:
            source.close()
    merged = per_track[0] if len(per_track) == 1 else merge_channels(per_track)
    return Transcription(tuple(merged), _joined(infos))


def _joined(infos: list[TranscriptionInfo]) -> TranscriptionInfo:
    """One info for the channels: the longest duration, the speech and times added up, the
    first channel's language."""
    first = infos[0]
    decode_s = sum(i.timings.decode_s for i in infos)
    duration = max(i.duration for i in infos)
    timings = Timings(load_s=first.timings.load_s, decode_s=decode_s, audio_s=duration)
    return replace(first, duration=duration, duration_after_vad=sum(i.duration_after_vad for i in infos),
                   timings=timings, peak_rss=max(i.peak_rss for i in infos))


def speaker_of(channel: int) -> str:
    return f"channel {channel}"


def merge_channels(per_channel: Sequence[Sequence[Segment]]) -> list[Segment]:
    """Every channel's segments, labelled ``channel N``, in order of start time, renumbered."""
    labelled = [replace(seg, speaker=speaker_of(i)) for i, segments in enumerate(per_channel) for seg in segments]
    labelled.sort(key=lambda s: (s.start, s.speaker or ""))
    return [replace(seg, id=i + 1) for i, seg in enumerate(labelled)]
