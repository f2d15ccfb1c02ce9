"""Diarization error rate, as pyannote.metrics and NIST md-eval define it: missed speech,
false alarm and speaker confusion over the reference's speech time, with a collar (0.25 s)
around every reference boundary left out of the count, and the best one-to-one mapping of
hypothesis speakers to reference speakers. Computed on a 10 ms grid."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from leanspeech.diarize.diarizer import Turn

STEP = 0.01


@dataclass(frozen=True)
class DER:
    der: float
    missed: float  # seconds
    false_alarm: float
    confusion: float
    total: float  # reference speech seconds scored


def _grid(turns: Sequence[Turn], names: list[str], frames: int) -> np.ndarray:
    grid = np.zeros((frames, len(names)), bool)
    for t in turns:
        grid[int(round(t.start / STEP)) : int(round(t.end / STEP)), names.index(t.speaker)] = True
    return grid


def der(reference: Sequence[Turn], hypothesis: Sequence[Turn], collar: float = 0.25) -> DER:
    ref_names = sorted({t.speaker for t in reference})
    hyp_names = sorted({t.speaker for t in hypothesis})
    end = max([t.end for t in reference] + [t.end for t in hypothesis] + [0.0])
    frames = int(end / STEP) + 2
    ref, hyp = _grid(reference, ref_names, frames), _grid(hypothesis, hyp_names, frames)
    scored = np.ones(frames, bool)
    for t in reference:
        for edge in (t.start, t.end):
            scored[max(0, int(round((edge - collar) / STEP))) : int(round((edge + collar) / STEP))] = False
    ref, hyp = ref[scored], hyp[scored]
    n_ref, n_hyp = ref.sum(axis=1), hyp.sum(axis=1)
    # frames each (reference, hypothesis) pair share
    overlap = ref.T.astype(np.int64) @ hyp.astype(np.int64)
    best = _best_mapping(overlap)
    total = float(n_ref.sum())
    missed = float(np.maximum(n_ref - n_hyp, 0).sum())
    false_alarm = float(np.maximum(n_hyp - n_ref, 0).sum())
    correct = float(best)
    confusion = float(np.minimum(n_ref, n_hyp).sum()) - correct
    err = (missed + false_alarm + confusion) / total if total else 0.0
    return DER(err, missed * STEP, false_alarm * STEP, confusion * STEP, total * STEP)


def _best_mapping(overlap: np.ndarray) -> float:
    """The most frames a one-to-one speaker mapping gets right."""
    rows, cols = overlap.shape
    if rows == 0 or cols == 0:
        return 0.0
    if rows > cols:
        overlap, rows, cols = overlap.T, cols, rows
    if cols <= 8:
        return max(sum(overlap[i, p[i]] for i in range(rows)) for p in itertools.permutations(range(cols), rows))
    from scipy.optimize import linear_sum_assignment

    r, c = linear_sum_assignment(-overlap)
    return float(overlap[r, c].sum())
