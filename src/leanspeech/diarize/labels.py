"""A transcription's segments labelled with the diarization's speakers.

With word times, a segment whose words belong to different speakers is cut where the
speaker changes, so each segment has one speaker (OpenAI's ``diarized_json`` shape);
without them, a segment gets the speaker who talks most within it."""

from __future__ import annotations

from dataclasses import replace

from leanspeech.diarize.diarizer import Diarization
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.result import Segment, Transcription


def word_options(options: TranscribeOptions) -> TranscribeOptions:
    """What a transcript to be labelled is decoded with: word times, which ``label`` cuts by."""
    return options.with_(word_timestamps=True, without_timestamps=False)


def label(result: Transcription, diarization: Diarization) -> Transcription:
    out: list[Segment] = []
    for seg in result.segments:
        if not seg.words:
            out.append(replace(seg, id=len(out) + 1, speaker=diarization.speaker_at(seg.start, seg.end)))
            continue
        runs: list[tuple[str | None, list]] = []
        for w in seg.words:
            who = diarization.speaker_at(w.start, w.end)
            if runs and runs[-1][0] == who:
                runs[-1][1].append(w)
            else:
                runs.append((who, [w]))
        for who, words in runs:
            text = "".join(w.word for w in words)
            start = seg.start if len(runs) == 1 else words[0].start
            end = seg.end if len(runs) == 1 else words[-1].end
            out.append(replace(seg, id=len(out) + 1, start=start, end=end, text=text if len(runs) > 1 else seg.text,
                               words=tuple(words), speaker=who))
    return Transcription(tuple(out), result.info)
