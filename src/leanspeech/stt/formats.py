"""Writers for transcripts: txt, srt, vtt, json, tsv (and the OpenAI verbose_json shape)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from leanspeech.atomic import write_text_atomic
from leanspeech.stt.result import Segment, Transcription

FORMATS = ("txt", "srt", "vtt", "json", "tsv")


def timestamp(seconds: float, *, sep: str = ",", always_hours: bool = True) -> str:
    """``HH:MM:SS,mmm`` (SRT) or ``HH:MM:SS.mmm`` (VTT, ``sep="."``)."""
    ms = max(0, int(round(seconds * 1000)))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    head = f"{hours:02d}:" if always_hours or hours else ""
    return f"{head}{minutes:02d}:{secs:02d}{sep}{ms:03d}"


def _labelled(seg: Segment) -> str:
    """A segment's text, led by its speaker when the channels were split."""
    text = seg.text.strip()
    return f"[{seg.speaker}] {text}" if seg.speaker and text else text


def pieces(segments: Iterable[Segment], fmt: str) -> Iterator[str]:
    """A text format written segment by segment: the pieces join to ``render``'s text, and
    each comes as soon as its segment does (a long file's transcript is written as it is
    decoded). Every format but json (which needs the whole transcription's info)."""
    if fmt == "vtt":
        yield "WEBVTT\n"
    elif fmt == "tsv":
        yield "start\tend\ttext\n"
    cues = 0
    for seg in segments:
        text = _labelled(seg)
        if not text:
            continue
        cues += 1
        start, end, cue = seg.start, max(seg.end, seg.start + 0.001), text.replace("-->", "->")
        if fmt == "txt":
            yield text + "\n"
        elif fmt == "srt":
            yield f"{'' if cues == 1 else chr(10)}{cues}\n{timestamp(start)} --> {timestamp(end)}\n{cue}\n"
        elif fmt == "vtt":
            yield f"\n{timestamp(start, sep='.')} --> {timestamp(end, sep='.')}\n{cue}\n"
        elif fmt == "tsv":
            yield f"{round(start * 1000)}\t{round(end * 1000)}\t{cue.replace(chr(9), ' ')}\n"
        else:
            raise ValueError(f"no streamed writer for {fmt!r}")
    if fmt == "txt" and not cues:
        yield "\n"


def to_txt(result: Transcription) -> str:
    return "".join(pieces(result.segments, "txt"))


def to_srt(result: Transcription) -> str:
    return "".join(pieces(result.segments, "srt"))


def to_vtt(result: Transcription) -> str:
    return "".join(pieces(result.segments, "vtt"))


def to_tsv(result: Transcription) -> str:
    return "".join(pieces(result.segments, "tsv"))


def to_json(result: Transcription) -> str:
    return json.dumps(result.as_dict(), ensure_ascii=False, indent=2) + "\n"


WRITERS = {"txt": to_txt, "srt": to_srt, "vtt": to_vtt, "json": to_json, "tsv": to_tsv}


def render(result: Transcription, fmt: str) -> str:
    from leanspeech.errors import InvalidOptionError

    if fmt not in WRITERS:
        raise InvalidOptionError(f"unknown format {fmt!r} (valid: {', '.join(FORMATS)})", "format")
    return WRITERS[fmt](result)


def write_transcript(path: str | os.PathLike, result: Transcription, fmt: str) -> Path:
    """``result`` in ``fmt`` at ``path``, whole or absent (``atomic``): the one writer of
    transcript files (``transcribe --output-dir``, ``batch``, its Ray workers)."""
    return write_text_atomic(path, render(result, fmt))
