"""Writers for transcripts: txt, srt, vtt, json, tsv (and the OpenAI verbose_json shape)."""

from __future__ import annotations

import json

from .result import Segment, Transcription

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


def _cues(result: Transcription):
    for seg in result.segments:
        text = _labelled(seg)
        if text:
            end = max(seg.end, seg.start + 0.001)
            yield seg.start, end, text.replace("-->", "->")


def to_txt(result: Transcription) -> str:
    return "\n".join(_labelled(s) for s in result.segments if s.text.strip()) + "\n"


def to_srt(result: Transcription) -> str:
    blocks = [
        f"{i}\n{timestamp(start)} --> {timestamp(end)}\n{text}\n"
        for i, (start, end, text) in enumerate(_cues(result), 1)
    ]
    return "\n".join(blocks)


def to_vtt(result: Transcription) -> str:
    blocks = ["WEBVTT\n"]
    blocks += [f"{timestamp(s, sep='.')} --> {timestamp(e, sep='.')}\n{t}\n" for s, e, t in _cues(result)]
    return "\n".join(blocks)


def to_tsv(result: Transcription) -> str:
    lines = ["start\tend\ttext"]
    lines += [f"{round(s * 1000)}\t{round(e * 1000)}\t{t.replace(chr(9), ' ')}" for s, e, t in _cues(result)]
    return "\n".join(lines) + "\n"


def to_json(result: Transcription) -> str:
    return json.dumps(result.as_dict(), ensure_ascii=False, indent=2) + "\n"


WRITERS = {"txt": to_txt, "srt": to_srt, "vtt": to_vtt, "json": to_json, "tsv": to_tsv}


def render(result: Transcription, fmt: str) -> str:
    from ..errors import InvalidOptionError

    if fmt not in WRITERS:
        raise InvalidOptionError(f"unknown format {fmt!r} (valid: {', '.join(FORMATS)})", "format")
    return WRITERS[fmt](result)
