"""Per-channel transcription of stereo audio (a call recorded with one speaker per channel):
each channel is transcribed alone, and the segments are labelled with their channel and
interleaved by time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .result import Segment


def speaker_of(channel: int) -> str:
    return f"channel {channel}"


def merge_channels(per_channel: Sequence[Sequence[Segment]]) -> list[Segment]:
    """Every channel's segments, labelled ``channel N``, in order of start time, renumbered."""
    labelled = [replace(seg, speaker=speaker_of(i)) for i, segments in enumerate(per_channel) for seg in segments]
    labelled.sort(key=lambda s: (s.start, s.speaker or ""))
    return [replace(seg, id=i + 1) for i, seg in enumerate(labelled)]
