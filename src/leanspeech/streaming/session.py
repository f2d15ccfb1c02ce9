"""A live transcription session: a rolling audio buffer, VAD, and stabilized segments.

The session is a state machine with no model and no I/O. Audio goes in with ``feed``;
``next_window`` says what to decode next (or nothing: too little new audio, silence, a
pause that closes the segment without another decode); the caller decodes that window
however it likes (alone, or batched with other sessions) and hands the words to ``apply``.
``segments()`` is what a client should show: the last completed segments and the one in
progress.

How text becomes final (LocalAgreement-2, as in whisper_streaming):
- each decode covers the buffer, at most ``context_s`` seconds (10 s by default);
- a word is *committed* when two successive decodes agree on it (same words from the start
  of the uncommitted text);
- committed words form the segment in progress; it becomes ``completed`` at a sentence end,
  at a pause that VAD hears (``pause_s`` of silence), when the buffer must be cut, or at the
  end of the stream;
- a segment completed at a pause or at the end of the stream takes its words from the
  latest decode that heard all of it (it has the most context), not from the decodes that
  first agreed on them: two early decodes of a half-heard phrase can agree on a wrong word
  ("Americans asked not" in windows that end just after "ask not"), which a decode of the
  whole phrase corrects;
- the buffer is cut at completed segments and whenever it outgrows ``context_s``, so memory
  stays bounded however long the stream runs.

No text on silence: silence is never decoded (VAD), a decode whose no-speech probability is
above ``no_speech_threshold`` is ignored, words outside VAD speech are dropped, and a phrase
repeated three times in a row (Whisper's loop on noise) is cut off.

Thread safety: ``feed`` may be called from one thread while another runs
``next_window``/``apply``; a lock guards the buffer.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from leanspeech.audio import SAMPLE_RATE
from leanspeech.streaming.options import LiveBufferFullError, LiveOptions
from leanspeech.streaming.stabilize import agreed_prefix, drop_committed, loop_start, speech_words
from leanspeech.stt.segments import TimedWord, WindowSegment
from leanspeech.stt.vad import SpeechTrack

KEEP_BEFORE_S = 0.2  # audio kept before a cut, so a word that starts early is not clipped
VAD_EVERY_S = 0.2  # new audio needed before VAD looks again
SILENCE_TAIL_S = 0.5  # audio kept when a silent buffer is dropped (speech may start there)
TAIL_S = 1.2  # agreed words this close to the end of a decoded window are not committed yet (see apply)


@dataclass(frozen=True)
class LiveSegment:
    start: float
    end: float
    text: str
    completed: bool
    words: tuple[TimedWord, ...] = ()
    language: str | None = None


@dataclass(frozen=True)
class LiveWindow:
    """Audio to decode: ``audio`` starts at ``start`` seconds on the stream's clock."""

    audio: np.ndarray
    start: float
    closing: bool  # commit everything it yields: a pause or the end of the stream
    speech: tuple[tuple[float, float], ...]  # VAD speech regions, stream clock

    @property
    def end(self) -> float:
        return self.start + self.audio.shape[0] / SAMPLE_RATE


def _segment(words: Sequence[TimedWord], completed: bool, language: str | None = None) -> LiveSegment:
    return LiveSegment(words[0].start, words[-1].end, "".join(w.word for w in words), completed, tuple(words),
                       language)


class StreamingSession:
    def __init__(self, options: LiveOptions | None = None):
        self.options = options or LiveOptions()
        self._lock = threading.Lock()
        self._audio = np.zeros(0, dtype=np.float32)
        self._incoming: list[np.ndarray] = []  # fed since the buffer was last joined (_join)
        self._start = 0  # stream sample index of _audio[0]
        self._total = 0  # samples received
        self._decoded_to = 0  # stream sample index the last decode reached
        self._closed_until = 0.0  # stream seconds: speech before this is in completed segments
        self._heard_until = 0.0  # stream seconds: audio before this needs no other decode (see next_window)
        self._vad_at = -1  # _total when VAD last looked
        self._committed_until = 0.0
        self._committed_tail: list[TimedWord] = []  # last committed words, to drop repeats
        self._completed_until = 0.0  # the same two, as they stood when a segment last completed
        self._completed_tail: list[TimedWord] = []
        self._latest: tuple[float, list[TimedWord]] | None = None  # last decode: window start, its words
        self._pending: list[TimedWord] = []  # committed, segment not completed yet
        self._hypothesis: list[TimedWord] = []  # last decode's uncommitted words
        self._same = 0
        self._last_text: str | None = None
        self.completed: deque[LiveSegment] = deque(maxlen=max(self.options.send_last_n_segments, 1))
        self.completed_total = 0
        self._completed_text: list[str] = []  # every completed segment's text, for stable_text()
        self.language: str | None = None  # of the latest decode with words
        self.decodes = 0
        self.ended = False
        self.tail_s = TAIL_S
        self._vad = SpeechTrack()  # the model is opened on the first look

    # ---- audio in -------------------------------------------------------------------

    def feed(self, samples: np.ndarray) -> None:
        """Append 16 kHz mono float32 samples (finite; the caller checks). The samples are
        joined to the buffer when a decode is planned, not at each frame (a copy of the whole
        buffer per frame costs more than the decode). ``LiveBufferFullError`` past
        ``options.max_buffer_s`` ahead of the decoder."""
        if samples.size == 0:
            return
        with self._lock:
            ahead = self.ahead_s + samples.shape[0] / SAMPLE_RATE
            if ahead > self.options.max_buffer_s:
                raise LiveBufferFullError(ahead, self.options.max_buffer_s)
            self._incoming.append(samples.astype(np.float32, copy=True))
            self._total += samples.shape[0]

    @property
    def received_s(self) -> float:
        """Seconds of audio fed since the session began."""
        return self._total / SAMPLE_RATE

    @property
    def ahead_s(self) -> float:
        """Seconds received that no decode has reached yet (audio sent faster than real time
        piles up here)."""
        return (self._total - max(self._decoded_to, self._start)) / SAMPLE_RATE

    @property
    def buffered_s(self) -> float:
        return (self._total - self._start) / SAMPLE_RATE

    def _join(self) -> None:
        """The fed samples into the buffer. Caller holds the lock."""
        if self._incoming:
            self._audio = np.concatenate([self._audio, *self._incoming])
            self._incoming = []

    def _cut(self, at_s: float) -> None:
        """Drop buffered audio before ``at_s`` (stream clock). Caller holds the lock."""
        self._join()
        at = min(max(int(at_s * SAMPLE_RATE), self._start), self._start + self._audio.shape[0])
        if at > self._start:
            self._audio = self._audio[at - self._start :].copy()  # copy: let the old array go
            self._start = at

    # ---- what to decode -------------------------------------------------------------

    def _speech(self, audio: np.ndarray, start: int) -> list[tuple[float, float]]:
        """VAD speech regions of the buffer (``audio``, from stream sample ``start``), stream
        clock. Only audio new since the last call goes through Silero (``SpeechTrack``)."""
        from faster_whisper.vad import VadOptions

        params = {
            "min_silence_duration_ms": int(self.options.pause_s * 1000),
            "speech_pad_ms": 100,
            **self.options.vad_parameters,
        }
        regions = self._vad.regions(audio, start, VadOptions(**params))
        return [(a / SAMPLE_RATE, b / SAMPLE_RATE) for a, b in regions]

    def next_window(self, final: bool = False) -> LiveWindow | None:
        """The window to decode now, or None. ``final``: the stream has ended."""
        o = self.options
        with self._lock:
            self._join()
            audio, start, total = self._audio, self._start, self._total
        new_s = (total - max(self._decoded_to, start)) / SAMPLE_RATE
        if new_s <= 0 or (not final and (total - self._vad_at) / SAMPLE_RATE < VAD_EVERY_S):
            return None
        self._vad_at = total
        if (total - start) / SAMPLE_RATE > o.context_s and not self._hypothesis and not self._pending:
            # All that was heard is final: keep only the context, and nothing not yet heard
            # (``_heard_until``; a cut at the end of the last decode lost "And so" when a first
            # decode of 0.7 s heard no words and the rest of the clip came at once).
            with self._lock:
                self._cut(min(total / SAMPLE_RATE - o.context_s + o.step_s, self._heard_until))
                audio, start = self._audio, self._start
        start_s, end_s = start / SAMPLE_RATE, total / SAMPLE_RATE
        if not o.use_vad:
            if final or new_s >= o.step_s:
                return LiveWindow(audio, start_s, final, ((start_s, end_s),))
            return None
        speech = self._speech(audio, start)
        if not speech:
            # Silence: nothing to decode. Whatever was in progress ends here.
            self._close_pending()
            with self._lock:
                self._cut(end_s - SILENCE_TAIL_S)
            self._done_until(total)
            return None
        if speech[0][0] - start_s > 1.0:  # leading silence: not worth encoding again
            with self._lock:
                self._cut(speech[0][0] - KEEP_BEFORE_S)
                audio, start = self._audio, self._start
            start_s = start / SAMPLE_RATE
        missed = self._missed_pause(audio, start_s, speech)
        if missed is not None:
            return missed
        paused = speech[-1][1] < end_s - 0.05  # VAD closed the last region: a pause of pause_s
        if paused and self._decoded_to / SAMPLE_RATE >= speech[-1][1]:
            # The last decode already heard all of this speech: its words are final, no
            # decode needed.
            self._close_pending(commit_hypothesis=True, revise=True)
            self._done_until(total)
            return None
        if paused or final or new_s >= o.step_s:
            limit = int((30.0 if final else o.context_s) * SAMPLE_RATE)  # 30 s: Whisper's window
            if audio.shape[0] > limit:  # audio came faster than it was decoded: oldest first
                audio, paused, final = audio[:limit], False, False
            return LiveWindow(audio, start_s, paused or final, tuple(speech))
        return None

    def _done_until(self, total: int) -> None:
        """Nothing before stream sample ``total`` needs another decode: silence, or speech
        the last decode heard whole and whose segment is now closed."""
        self._decoded_to = total
        self._closed_until = self._heard_until = total / SAMPLE_RATE

    def _missed_pause(self, audio: np.ndarray, start_s: float,
                      speech: list[tuple[float, float]]) -> LiveWindow | None:
        """A closing window up to a pause that went by unseen, or None.

        A pause is seen when VAD looks during it; a session whose decodes take longer than the
        pause (a loaded server) looks again only after the next phrase has begun, and the two
        phrases would become one segment, its text late (docs, benchmark "A pause heard late still
        closes the phrase before it"). VAD still has the pause in the buffer, as a gap between two
        speech regions not yet in a completed segment: the speech before it is closed now, in a
        window cut in the middle of the gap."""
        # regions in completed segments: before the last close, or ending near the last
        # completed word (word ends and VAD's padded region ends differ by a few hundred ms)
        done = max(self._closed_until, self._completed_until + 0.5)
        open_speech = [r for r in speech if r[1] > done]
        if len(open_speech) < 2:
            return None
        cut_s = (open_speech[0][1] + open_speech[1][0]) / 2
        n = int(round((cut_s - start_s) * SAMPLE_RATE))
        if n <= 0 or n > int(30.0 * SAMPLE_RATE):
            return None
        return LiveWindow(audio[:n], start_s, True, tuple(r for r in speech if r[0] < cut_s))

    # ---- decoded words in -----------------------------------------------------------

    def apply(self, window: LiveWindow, segments: Sequence[WindowSegment]) -> bool:
        """Take one decode of ``window`` (segments with words, times relative to the
        window). Returns whether ``segments()`` changed."""
        o = self.options
        self.decodes += 1
        before = self.segments()
        end_sample = int(round(window.end * SAMPLE_RATE))
        # a closing window may end before an earlier partial did (cut at a missed pause): the
        # audio after it is heard again, by the next window
        self._decoded_to = end_sample if window.closing else max(self._decoded_to, end_sample)
        # Heard: all of a closing window (it ends in a pause, or the stream), a partial one
        # but its last ``tail_s``, where a word cut short may have yielded nothing yet.
        self._heard_until = window.end if window.closing else max(self._heard_until, window.end - self.tail_s)
        words: list[TimedWord] = []
        for seg in segments:
            if seg.no_speech_prob > o.no_speech_threshold:
                continue
            words.extend(w.shifted(window.start) for w in seg.words or () if w.word.strip())
            self.language = seg.language or self.language
        if o.use_vad:
            words = speech_words(words, window.speech)
        loop = loop_start(words)
        if loop is not None:
            words = words[:loop]
        self._latest = (window.start, words)
        if window.closing:
            if not self._revise():  # the buffer was cut inside the segment: add to what was agreed
                self._commit(
                    drop_committed(words, self._committed_tail, self._committed_until, window_start=window.start)
                )
            self._close_pending()  # drops the hypothesis: the closing decode's words are committed
            self._closed_until = window.end
        else:
            words = drop_committed(words, self._committed_tail, self._committed_until, window_start=window.start)
            agreed = agreed_prefix(self._hypothesis, words)
            # Words near the end of the audio are guesses on a word cut in half ("your
            # coun-" comes out "you are"), and two decodes can guess alike: they wait.
            while agreed and words[agreed - 1].end > window.end - self.tail_s:
                agreed -= 1
            self._commit(words[:agreed])
            self._hypothesis = words[agreed:]
            text = "".join(w.word for w in self._pending + self._hypothesis)
            self._same = self._same + 1 if text == self._last_text else 0
            self._last_text = text
            if self._same >= o.same_output_threshold:  # WhisperLive's rule: an unchanged output is final
                self._close_pending(commit_hypothesis=True, revise=True)

        with self._lock:
            self._join()
            # Completed speech stays in the buffer as context for what follows (a short
            # phrase after a pause is decoded far better with the sentence before it);
            # ``drop_committed`` keeps its words from coming back. Only the size is bounded.
            if self.buffered_s > o.context_s:
                self._make_room(window.end, window.speech)
            elif o.clip_audio and not words and self.buffered_s > 5.0:
                self._cut(window.end - 1.0)  # WhisperLive's clip_audio: speech-free audio goes
        return self.segments() != before

    def _make_room(self, decoded_end: float, speech: Sequence[tuple[float, float]]) -> None:
        """The buffer outgrew its context: cut it to ``context_s - step_s``. Words older than
        the cut that are still unagreed are committed as they stand (the model had a whole
        context to agree on them). Caller holds the lock."""
        o = self.options
        # Never past what was decoded: audio that arrived during the decode is kept whole.
        target = min((self._start + self._audio.shape[0]) / SAMPLE_RATE, decoded_end) - o.context_s + o.step_s
        if self._committed_until < target and self._hypothesis:
            older = [w for w in self._hypothesis if w.end <= target] or self._hypothesis[:1]
            self._commit(older)
            self._hypothesis = self._hypothesis[len(older) :]
        # Cut where the segment in progress begins, so the decoder hears whole sentences;
        # when that segment alone is too long, at its last committed word, else the target.
        # With nothing in progress, where the next phrase begins: a cut just before the last
        # committed word's end left its tail at the start of the buffer, and a decode of
        # "-cans | ask not" (audio sent in a burst) came out "ask notodox ask oriented...".
        if self._pending:
            begin = self._pending[0].start - KEEP_BEFORE_S
        else:
            begin = next((max(a - KEEP_BEFORE_S, self._committed_until) for a, _ in speech
                          if a >= self._committed_until), self._committed_until)
        at = begin if begin >= target - o.step_s else self._committed_until - KEEP_BEFORE_S
        self._cut(max(at, target - o.step_s))

    def _commit(self, words: Sequence[TimedWord]) -> None:
        for w in words:
            self._pending.append(w)
            self._committed_until = w.end
            self._committed_tail = (self._committed_tail + [w])[-8:]
            if w.ends_sentence():
                self._complete(self._pending)
                self._pending = []

    def _complete(self, words: Sequence[TimedWord]) -> None:
        if words:
            self.completed.append(_segment(words, True, self.language))
            self.completed_total += 1
            self._completed_text.append("".join(w.word for w in words))
            self._same = 0
            self._completed_until = words[-1].end
            self._completed_tail = self._committed_tail[-8:]

    def _revise(self) -> bool:
        """Replace the segment in progress (committed and hypothesis words) with the latest
        decode's words after the last completed segment, when that decode heard the whole
        segment (its window began before the first committed word). Returns whether it did."""
        if self._latest is None:
            return False
        start, words = self._latest
        current = self._pending or self._hypothesis
        if current and start > current[0].start - 0.05:
            return False  # the buffer was cut inside the segment: the decode missed its start
        words = drop_committed(words, self._completed_tail, self._completed_until, window_start=start)
        self._pending, self._hypothesis = [], []
        self._committed_until, self._committed_tail = self._completed_until, list(self._completed_tail)
        self._commit(words)
        return True

    def _close_pending(self, commit_hypothesis: bool = False, revise: bool = False) -> None:
        if revise:
            self._revise()
        if commit_hypothesis and self._hypothesis:
            self._commit(self._hypothesis)
        self._hypothesis = []
        self._complete(self._pending)
        self._pending = []
        self._last_text = None
        self._latest = None

    def finish(self) -> None:
        """The stream ended: everything still open is final. Call after the last decode."""
        self._close_pending(commit_hypothesis=True, revise=True)
        with self._lock:
            self._audio = np.zeros(0, dtype=np.float32)
            self._incoming = []
            self._start = self._total
        self.ended = True

    # ---- what to show ---------------------------------------------------------------

    def in_progress(self) -> LiveSegment | None:
        words = self._pending + self._hypothesis
        return _segment(words, False, self.language) if words else None

    def stable_text(self) -> str:
        """All the text that will not change: every completed segment, then the committed
        words of the one in progress (not its hypothesis). Grows append-only, except when a
        segment closes and ``_revise`` replaces its words with a later decode's."""
        return "".join(self._completed_text) + "".join(w.word for w in self._pending)

    def segments(self) -> list[LiveSegment]:
        """The last ``send_last_n_segments`` completed segments, then the one in progress."""
        out = list(self.completed)[-self.options.send_last_n_segments :]
        current = self.in_progress()
        return out + [current] if current is not None else out
