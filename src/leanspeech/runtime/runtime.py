"""``Runtime``: the core that every front door calls.

One object, built from the settings, owns the model manager (loader specs, TTL, budget,
reference counts), one batcher per loaded speech-to-text model (inside each ``ServedModel``),
the speech-to-text service, the text-to-speech service and the live slots. Adapters (the
HTTP routes, the WhisperLive handler, the CLI) parse their protocol, call the runtime and
map its errors; none of them builds an engine, sizes a batch or knows a backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from leanspeech.audio import AudioStream
from leanspeech.config import Settings
from leanspeech.diarize.request import DiarizeRequest
from leanspeech.errors import InvalidOptionError, UnknownModelError
from leanspeech.memory import parse_bytes, release_memory
from leanspeech.runtime.admission import Gate
from leanspeech.runtime.diarize_service import SpeakerService, diarize_loader
from leanspeech.runtime.loaders import stt_loader, tts_loader
from leanspeech.runtime.manager import LoaderSpec, ModelManager
from leanspeech.runtime.slots import LiveSlots
from leanspeech.runtime.stt_service import SpeechService
from leanspeech.runtime.tts_service import VoiceService
from leanspeech.streaming.driver import LiveTranscriber, OnLanguage, OnSegments
from leanspeech.streaming.options import LiveOptions
from leanspeech.streaming.turn_transcriber import OnDelta, TurnTranscriber
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.result import Transcription

logger = logging.getLogger(__name__)

#: What OpenAI clients send as the model; served by the default speech-to-text model.
WHISPER_ALIASES = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-4o-mini-transcribe-2025-12-15",
                   "gpt-transcribe", "gpt-live-transcribe", "gpt-realtime-whisper", "gpt-4o-transcribe-diarize")
#: The front doors, for the per-protocol counts (/info, /metrics).
PROTOCOLS = ("openai", "whisperlive", "realtime", "wyoming")
#: A live session's eviction: the coroutine that tells it why and closes it.
Evict = Callable[[], Coroutine[Any, Any, None]]
#: Seconds without work after which freed heap pages are handed back at once.
IDLE_TRIM_S = 2.0


@dataclass
class Observers:
    """Callbacks for the server's metrics (all optional)."""

    batch: Callable[[int, float], None] | None = None  # (windows, seconds) per decode call
    audio: Callable[[float, float], None] | None = None  # (audio s, decode s) per transcription
    live_audio: Callable[[float], None] | None = None  # audio s received by a live session


class Runtime:
    def __init__(self, settings: Settings, *, loaders: dict[str, LoaderSpec[Any]] | None = None,
                 observers: Observers | None = None):
        self.settings = settings
        self.observers = observers or Observers()
        self.work_seconds = 0.0  # audio taken in (files and live)
        self._work_events = 0  # audio in and decodes done: the heap trim watches these
        self._last_work = time.monotonic()
        self.manager = ModelManager(
            loaders if loaders is not None else {
                "stt": stt_loader(settings, self._on_batch), "tts": tts_loader(settings),
                "diarize": diarize_loader(settings.model_dir, settings.diarize.model_ttl, settings.stt.cpu_threads)},
            budget=parse_bytes(settings.memory.budget), cleanup_interval=settings.memory.cleanup_interval,
            budget_label=settings.memory.budget)
        self.speech = SpeechService(self.manager, on_audio=self._on_audio)
        self.speakers = SpeakerService(self.manager, self.speech.run_blocking)
        self.voice = VoiceService(self.manager, settings.tts.voice, settings.tts.max_total_length)
        self.live = LiveSlots(settings.live.max_clients, settings.live.max_connection_time,
                              settings.live.evict_idle_s)
        srv = settings.server
        #: HTTP jobs in flight, refused past the bound (429): no queue builds up anywhere
        self.transcriptions = Gate("transcriptions", srv.max_transcriptions, "LEANSPEECH_SERVER__MAX_TRANSCRIPTIONS")
        self.syntheses = Gate("speech syntheses", srv.max_speech, "LEANSPEECH_SERVER__MAX_SPEECH")
        self.requests_by_protocol: dict[str, int] = {}
        self._evictions: set[asyncio.Task] = set()
        self.started_at = time.time()
        self.ready = False
        self.load_error: str | None = None

    # ---- names ----------------------------------------------------------------------

    def stt_model(self, requested: str | None) -> str:
        """The catalog model for a request's model; ``whisper-1`` (and no model) is the
        default. Paths and unknown names are refused."""
        from leanspeech.models.catalog import CATALOG
        from leanspeech.models.store import check_model_name

        name = (requested or "").strip() or self.settings.stt.model
        if name in WHISPER_ALIASES:
            return self.settings.stt.model
        check_model_name(name)
        if name not in CATALOG:
            raise UnknownModelError(name, (*CATALOG, *WHISPER_ALIASES))
        return name

    def model_for(self, requested: str | None, *, task: str = "transcribe", language: str | None = None) -> str:
        """``stt_model``, except that an OpenAI name (``whisper-1``) asked to translate, or to
        transcribe a language other than English, runs on a multilingual model on disk (``base``
        first) when the default is English-only: OpenAI's ``whisper-1`` is multilingual."""
        name = self.stt_model(requested)
        if (requested or "").strip() not in WHISPER_ALIASES or (task != "translate" and (language or "en") == "en"):
            return name
        from leanspeech.models.catalog import CATALOG
        from leanspeech.models.store import local_sources

        if name not in CATALOG or not CATALOG[name].english_only:
            return name
        multilingual = sorted((n for n, e in CATALOG.items() if not e.english_only), key=lambda n: n != "base")
        return next((n for n in multilingual if local_sources(CATALOG[n], self.settings.model_dir)), name)

    async def transcribe_diarized(self, model: str, open_audio: Callable[[], AudioStream], options: TranscribeOptions,
                                  request: DiarizeRequest,
                                  on_text: Callable[[str, float], Awaitable[None]] | None = None) -> Transcription:
        """Who spoke when (the audio read once for it), then the transcript with word times
        (read again), its segments cut where the speaker changes and labelled."""
        from leanspeech.diarize.labels import label, word_options

        diarization = await self.speakers.diarize(open_audio, request)
        audio = await asyncio.to_thread(open_audio)
        result = await self.speech.transcribe(model, audio, word_options(options), on_text=on_text)
        return label(result, diarization)

    def live_model(self, requested: str | None) -> tuple[str, str | None]:
        """(model, warning): the client's model when this server has it on disk, else the
        default with a warning that says so (live clients send their own model names)."""
        from leanspeech.models.catalog import CATALOG
        from leanspeech.models.store import local_sources

        default = self.settings.stt.model
        name = self.stt_model(requested)
        if requested and name != default and not local_sources(CATALOG[name], self.settings.model_dir):
            return default, f"model {requested!r} is not on this server; using {default!r}"
        return name, None

    # ---- options --------------------------------------------------------------------

    def transcribe_options(self, *, language: str | None = None, prompt: str | None = None, temperature: float = 0.0,
                           task: str = "transcribe", word_timestamps: bool = False, timestamps: bool = True,
                           multilingual: bool | None = None, hotwords: str | None = None,
                           channels: str | None = None) -> TranscribeOptions:
        """A request's decoding options on top of the settings (``None``: the setting).
        ``timestamps`` False: the answer needs no times, so no alignment pass runs."""
        s = self.settings.stt
        self._check_text(prompt, "prompt")
        self._check_text(hotwords, "hotwords")
        return TranscribeOptions(
            beam_size=s.beam_size, language=language or s.language, task=task, vad=s.vad,
            word_timestamps=word_timestamps, initial_prompt=prompt or None, temperature=temperature,
            without_timestamps=not timestamps and not word_timestamps,
            multilingual=s.multilingual if multilingual is None else multilingual,
            hotwords=hotwords or s.hotwords, channels=channels or "mono", block_seconds=s.block_seconds,
        )

    def live_options(self, **client: Any) -> LiveOptions:
        """A live session's options: what the client asked for (``LiveOptions`` fields) on top
        of the settings' buffer, step, pause, beam and encoder padding."""
        lv = self.settings.live
        self._check_text(client.get("initial_prompt"), "initial_prompt")
        self._check_text(client.get("hotwords"), "hotwords")
        client["language"] = client.get("language") or self.settings.stt.language
        return LiveOptions(context_s=lv.context_s, step_s=lv.step_s, pause_s=lv.pause_s, beam_size=lv.beam_size,
                           encoder_padding=lv.encoder_padding, max_buffer_s=max(lv.max_buffer_s, lv.context_s),
                           **client)

    def _check_text(self, text: str | None, param: str) -> None:
        """A prompt or hotwords within ``server.max_text_length`` characters: each is decoded
        as tokens before every window's own, so a long one costs every decode."""
        limit = self.settings.server.max_text_length
        if text is not None and len(text) > limit:
            raise InvalidOptionError(f"{param} is {len(text)} characters, over the limit of {limit} "
                                     "(LEANSPEECH_SERVER__MAX_TEXT_LENGTH)", param)

    def check_live(self, model: str, options: LiveOptions) -> None:
        """``InvalidOptionError`` now, before any audio, when ``model`` cannot honour the
        session's language or task (an English-only model asked for German)."""
        from leanspeech.models.catalog import CATALOG
        from leanspeech.stt.languages import check_model_options

        entry = CATALOG.get(model)
        check_model_options(model, entry is None or not entry.english_only, options.transcribe_options(),
                            self.settings.model_dir)

    def count_request(self, protocol: str) -> None:
        """One request served through ``protocol`` (an HTTP call, a Realtime item, a Wyoming
        transcription or synthesis), for /metrics and /info."""
        self.requests_by_protocol[protocol] = self.requests_by_protocol.get(protocol, 0) + 1

    def protocols(self) -> dict[str, dict[str, int]]:
        """Per protocol: open sessions, sessions ever opened, requests served."""
        open_now, totals = self.live.by_protocol(), dict(self.live.totals)
        names = sorted({*PROTOCOLS, *open_now, *totals, *self.requests_by_protocol})
        return {p: {"open_sessions": open_now.get(p, 0), "sessions_total": totals.get(p, 0),
                    "requests_total": self.requests_by_protocol.get(p, 0)} for p in names}

    # ---- live sessions --------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def live_session(self, model: str, options: LiveOptions, *, on_segments: OnSegments,
                           on_language: OnLanguage | None = None) -> AsyncIterator[LiveTranscriber]:
        """Hold ``model`` for one live session and drive it: feed it audio, ``end()`` it,
        await its ``run()``."""
        async with self.speech.hold(model) as served:
            served.engine.check_options(options.transcribe_options())  # e.g. German on an English-only model
            live = LiveTranscriber(self.speech, served, options, on_segments=on_segments, on_language=on_language)
            yield live

    def turn(self, model: str, options: LiveOptions, on_delta: OnDelta | None = None) -> TurnTranscriber:
        """One utterance (a Realtime item, a Wyoming transcription) through a live session
        that holds ``model`` for as long as the turn lasts. Must be called on the event loop."""
        return TurnTranscriber(lambda on_segments: self.live_session(model, options, on_segments=on_segments),
                               on_delta, max_buffer_s=options.max_buffer_s)

    async def enter_live(self, protocol: str, evict: Evict | None = None) -> int | None:
        """A live slot for a new session (``LiveSlots.enter``), or None when every slot stays
        taken. With eviction on, a full server is asked again for up to ``evict_idle_s`` (and
        a little): a session that has just gone quiet becomes evictable within that time, so
        an idle connection opened a moment earlier does not turn a real client away.
        ``evict()``: the coroutine that tells the session and closes it, run as a task here
        if another session takes this one's slot."""
        slots = self.live
        deadline = time.monotonic() + (slots.evict_idle_s + 0.5 if slots.evict_idle_s > 0 else 0.0)
        on_evict = None if evict is None else (lambda: self._run_eviction(evict))
        while True:
            ticket = slots.enter(protocol, on_evict)
            if ticket is not None or time.monotonic() >= deadline:
                return ticket
            await asyncio.sleep(0.1)

    def _run_eviction(self, evict: Evict) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(evict())
        self._evictions.add(task)  # held until done: a task nobody references can be collected
        task.add_done_callback(self._evictions.discard)

    def observe_live_audio(self, seconds: float) -> None:
        self._worked(seconds)
        if self.observers.live_audio is not None:
            self.observers.live_audio(seconds)

    def _on_audio(self, audio_s: float, decode_s: float) -> None:
        self._worked(audio_s)
        if self.observers.audio is not None:
            self.observers.audio(audio_s, decode_s)

    def _on_batch(self, size: int, seconds: float) -> None:
        self._worked(0.0)
        if self.observers.batch is not None:
            self.observers.batch(size, seconds)

    def _worked(self, audio_s: float) -> None:
        self.work_seconds += audio_s
        self._work_events += 1
        self._last_work = time.monotonic()

    # ---- lifetime -------------------------------------------------------------------

    def preload(self) -> None:
        """Load the default model (blocking) so that the server reports ready; the handle is
        released at once, so the idle TTL applies from here."""
        name = self.settings.stt.model
        try:
            with self.manager.acquire("stt", name, counted=False):
                pass
            self.ready = True
            logger.info("Ready: %s loaded", name)
        except Exception as exc:
            self.load_error = str(exc)
            logger.error("Could not load the default model %s: %s", name, exc)

    async def housekeeping(self) -> None:
        """Forever, once a second: unload models idle past their TTL, and hand freed heap
        pages back to the OS (without it RSS creeps up over a long live session: docs,
        "Memory over time"): after work, every ``TRIM_INTERVAL`` seconds while it goes on and
        once when it stops (``IDLE_TRIM_S`` without audio in or a decode done)."""
        interval = self.settings.memory.trim_interval
        last_trim, trimmed_events = time.monotonic(), self._work_events
        while True:
            await asyncio.sleep(1.0)
            for record in await asyncio.to_thread(self.manager.reap):
                logger.info("TTL unload of %s returned %d bytes of RSS", record["key"], record["rss_freed"])
            now, events = time.monotonic(), self._work_events
            if not interval or events == trimmed_events:
                continue
            if now - last_trim >= interval or now - self._last_work >= IDLE_TRIM_S:
                last_trim, trimmed_events = now, events
                await asyncio.to_thread(release_memory)  # gc first: cycles can hold decode buffers

    def close(self) -> None:
        """Unload every model (after in-flight work has finished)."""
        self.manager.close()
        self.speech.close()
