"""Live transcription from the library, without a server: feed chunks, get segments."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from leanspeech.streaming.options import LiveOptions
from leanspeech.streaming.session import LiveSegment, StreamingSession
from leanspeech.stt.decode_loop import DirectDecoder, decode_windows
from leanspeech.stt.engine import Engine
from leanspeech.stt.windows import Window


def stream_audio(engine: Engine, chunks: Iterable[np.ndarray], options: LiveOptions | None = None,
                 session: StreamingSession | None = None) -> Iterator[list[LiveSegment]]:
    """Feed 16 kHz float32 ``chunks`` to a session on ``engine``, in the calling thread, and
    yield ``session.segments()`` each time they change. The last yield comes after the
    stream ends and every segment is completed.

    The decode cadence follows the audio, not the clock (a decode every ``step_s`` of audio
    fed), so the result does not depend on how fast the machine is.
    """
    session = session or StreamingSession(options)
    opts = session.options.transcribe_options()
    language = session.options.language
    decoder = DirectDecoder(engine)

    def step(final: bool) -> None:
        """One decode (or, at the end, every decode still due)."""
        nonlocal language
        while (window := session.next_window(final)) is not None:
            decoded = decode_windows(engine, [Window.of(window.audio)], opts.with_(language=language), decoder)
            language = decoded.language
            session.apply(window, decoded.per_window[0])
            if not final:
                return

    for chunk in chunks:
        before = session.segments()  # a pause can complete a segment without a decode
        session.feed(np.asarray(chunk, dtype=np.float32))
        step(False)
        if session.segments() != before:
            yield session.segments()
    step(True)
    session.finish()
    yield session.segments()
