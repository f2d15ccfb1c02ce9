"""What a caller asks of diarization: speaker bounds and known speakers' reference clips,
checked before any audio is decoded (each front door maps the errors to its own shape)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from leanspeech.audio import SAMPLE_RATE, AudioStream
from leanspeech.diarize.cluster import SpeakerBounds
from leanspeech.errors import AudioTooLongError, InvalidAudioError, InvalidOptionError

MAX_KNOWN = 4  # OpenAI's limit on known speakers
REFERENCE_MIN_S = 2.0
REFERENCE_MAX_S = 10.0
NAME_MAX = 64


@dataclass(frozen=True)
class DiarizeRequest:
    bounds: SpeakerBounds = SpeakerBounds()
    #: known speakers: name -> 16 kHz mono reference clip of their voice (2-10 s)
    known: dict[str, np.ndarray] = field(default_factory=dict)


def known_speakers_from(names: Sequence[str], clips: Sequence[object], max_known: int = MAX_KNOWN
                   ) -> dict[str, np.ndarray]:
    """Known speakers from parallel lists of names and clips (anything ``decode_audio``
    takes), each clip decoded and checked: 2 to 10 seconds of decodable audio."""
    if len(names) != len(clips):
        raise InvalidOptionError(f"{len(names)} known_speaker_names but {len(clips)} known_speaker_references; "
                                 "send one reference per name", "known_speaker_references")
    if len(names) > max_known:
        raise InvalidOptionError(f"{len(names)} known speakers, over the limit of {max_known} "
                                 "(LEANSPEECH_DIARIZE__MAX_KNOWN_SPEAKERS)", "known_speaker_names")
    out: dict[str, np.ndarray] = {}
    for i, (name, clip) in enumerate(zip(names, clips, strict=True)):
        name = (name or "").strip()
        if not name or len(name) > NAME_MAX:
            raise InvalidOptionError(f"known_speaker_names[{i}] must be 1 to {NAME_MAX} characters",
                                     "known_speaker_names")
        if name in out:
            raise InvalidOptionError(f"known speaker {name!r} is named twice", "known_speaker_names")
        too_long = InvalidOptionError(
            f"known_speaker_references[{i}] ({name}) is longer than {REFERENCE_MAX_S:g} s; a reference must be "
            f"{REFERENCE_MIN_S:g} to {REFERENCE_MAX_S:g} s", "known_speaker_references")
        try:  # read piece by piece, stopped past the limit: a header that lies costs nothing
            stream = AudioStream(clip, piece_s=1.0, max_seconds=REFERENCE_MAX_S + 0.5)  # type: ignore[arg-type]
            audio = np.concatenate(list(stream))
        except AudioTooLongError:
            raise too_long from None
        except InvalidAudioError as exc:
            raise InvalidOptionError(f"known_speaker_references[{i}] ({name}) is not decodable audio: "
                                     f"{str(exc).split(': ', 1)[-1]}", "known_speaker_references") from None
        seconds = audio.shape[0] / SAMPLE_RATE
        if seconds > REFERENCE_MAX_S:
            raise too_long
        if seconds < REFERENCE_MIN_S:
            raise InvalidOptionError(
                f"known_speaker_references[{i}] ({name}) lasts {seconds:.1f} s; a reference must be "
                f"{REFERENCE_MIN_S:g} to {REFERENCE_MAX_S:g} s", "known_speaker_references")
        out[name] = audio
    return out


def make_request(*, num_speakers: int | None = None, min_speakers: int | None = None, max_speakers: int | None = None,
                 known_speakers: dict[str, object] | None = None) -> DiarizeRequest:
    """A request from keyword arguments (the library's and the CLI's form): ``known_speakers``
    maps each name to a reference clip (a path, bytes or a 16 kHz array)."""
    bounds = SpeakerBounds(num=num_speakers, min=min_speakers, max=max_speakers)
    known = known_speakers or {}
    return DiarizeRequest(bounds, known_speakers_from(list(known), list(known.values())) if known else {})
