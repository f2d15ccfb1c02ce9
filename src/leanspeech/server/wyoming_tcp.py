"""Wyoming (Home Assistant's protocol) on two TCP ports: speech-to-text (default 10300) and
text-to-speech (default 10200). The ``wyoming`` package does the framing and event types.

Speech-to-text: ``describe`` -> ``info``; ``transcribe`` (language, model name), then
``audio-start`` / ``audio-chunk`` / ``audio-stop`` -> ``transcript-start``, a
``transcript-chunk`` as each stretch of words is stable, then ``transcript`` (the final text)
and ``transcript-stop``. Audio of any rate, width (1-4 bytes) and channel count is converted.
Each utterance is a ``TurnTranscriber`` from the runtime: the same live session core,
batcher, model manager and budget as the other protocols.

Text-to-speech: ``synthesize`` -> ``audio-start`` / ``audio-chunk`` / ``audio-stop``;
``synthesize-start`` / ``-chunk`` / ``-stop`` synthesize each sentence as soon as it is
complete (one audio stream, then ``synthesize-stopped``); the ``synthesize`` event that
streaming clients send alongside is ignored while a stream is open.

Unknown event types are ignored, as the protocol says; audio before ``audio-start`` gets an
``error`` event. A client that leaves mid-stream leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from typing import TYPE_CHECKING

import numpy as np
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import AsrModel, AsrProgram, Attribution, Describe, Info, TtsProgram, TtsVoice
from wyoming.server import AsyncEventHandler, AsyncTcpServer
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped

from leanspeech.config import is_loopback
from leanspeech.errors import LeanspeechError
from leanspeech.memory import parse_bytes
from leanspeech.server.pcm import StreamConverter
from leanspeech.tts.chunking import complete_sentences

if TYPE_CHECKING:
    from leanspeech.runtime import Runtime
    from leanspeech.streaming.options import LiveOptions
    from leanspeech.streaming.turn_transcriber import TurnTranscriber

logger = logging.getLogger(__name__)
PROTOCOL = "wyoming"
LEANSPEECH = Attribution(name="leanspeech", url="https://github.com/leanspeech/leanspeech")


def _version() -> str:
    from leanspeech import __version__

    return __version__


def asr_info(runtime: Runtime) -> Info:
    from leanspeech.models.catalog import CATALOG
    from leanspeech.models.store import local_sources
    from leanspeech.stt.options import language_codes

    models = []
    for name, entry in CATALOG.items():
        if name == runtime.settings.stt.model or local_sources(entry, runtime.settings.model_dir):
            models.append(AsrModel(
                name=name, description=f"Whisper {name} ({'English only' if entry.english_only else 'multilingual'})",
                attribution=Attribution(name="OpenAI Whisper", url="https://github.com/openai/whisper"),
                installed=True, version=None, languages=["en"] if entry.english_only else list(language_codes())))
    program = AsrProgram(name="leanspeech", description="leanspeech speech-to-text (faster-whisper, CTranslate2)",
                         attribution=LEANSPEECH, installed=True, version=_version(), models=models,
                         supports_transcript_streaming=True)
    return Info(asr=[program])


def tts_info(runtime: Runtime) -> Info:
    import json

    from leanspeech.tts.voices import VOICES, UnknownVoiceError, resolve_voice

    voices = []
    for name in VOICES:
        try:
            files = resolve_voice(name)
        except UnknownVoiceError:
            continue
        language = json.loads(files.config.read_text(encoding="utf-8")).get("language", {}).get("code", "en_US")
        voices.append(TtsVoice(name=name, description=f"Piper {name}",
                               attribution=Attribution(name="rhasspy", url="https://github.com/rhasspy/piper"),
                               installed=True, version=None, languages=[language]))
    program = TtsProgram(name="leanspeech", description="leanspeech text-to-speech (Piper, ONNX Runtime)",
                         attribution=LEANSPEECH, installed=True, version=_version(), voices=voices,
                         supports_synthesize_streaming=True)
    return Info(tts=[program])


class WyomingLimit(Exception):
    """A client broke a bound (idle, size, framing): an ``error`` event, then the close."""

    def __init__(self, text: str, code: str):
        super().__init__(text)
        self.text, self.code = text, code


class _Handler(AsyncEventHandler):
    """Reads events itself, within bounds the ``wyoming`` package does not set: the header
    line (64 KiB), the data and payload lengths (``wyoming.max_payload_bytes``), the time
    between events (``wyoming.idle_timeout``) and the JSON's depth. A client past a bound
    gets an ``error`` event and is disconnected; whatever it held (a live slot, a turn) is
    let go on every path (``disconnect``)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, runtime: Runtime):
        super().__init__(reader, writer)
        self.runtime = runtime
        self.peer = writer.get_extra_info("peername")
        wy = runtime.settings.wyoming
        self.idle_timeout = wy.idle_timeout
        self.max_payload = parse_bytes(wy.max_payload_bytes) or 2**20

    async def error(self, text: str, code: str) -> None:
        logger.info("wyoming %s: %s", self.peer, text)
        await self.write_event(Error(text=text, code=code).event())

    async def write_event(self, event: Event) -> None:
        """``ConnectionResetError`` once the connection is closed (by the client, or by us:
        an eviction), whatever the transport raises, so that ``run`` ends quietly."""
        if self.writer.is_closing():
            raise ConnectionResetError("the Wyoming connection is closed")
        try:
            await super().write_event(event)
        except RuntimeError as exc:  # uvloop: "unable to perform operation on <TCPTransport closed=True>"
            raise ConnectionResetError(str(exc)) from None

    async def run(self) -> None:
        try:
            while True:
                try:
                    event = await asyncio.wait_for(self._read_event(), self.idle_timeout)
                except asyncio.TimeoutError:
                    raise WyomingLimit(f"no event for {self.idle_timeout:g} s; closing the connection "
                                       "(LEANSPEECH_WYOMING__IDLE_TIMEOUT)", "idle_timeout") from None
                if event is None or not await self.handle_event(event):
                    break
        except WyomingLimit as exc:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.error(exc.text, exc.code)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        finally:
            await self.disconnect()
            with contextlib.suppress(Exception):
                self.writer.close()

    async def _read_event(self) -> Event | None:
        try:
            line = await self.reader.readline()
        except (ValueError, asyncio.LimitOverrunError):  # a header line past the stream's 64 KiB limit
            raise WyomingLimit("an event header line is longer than 64 KiB", "invalid_event") from None
        if not line:
            return None
        header = _json_object(line, "event header")
        data: dict = header["data"] if isinstance(header.get("data"), dict) else {}
        data_length, payload_length = header.get("data_length"), header.get("payload_length")
        for name, value in (("data_length", data_length), ("payload_length", payload_length)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise WyomingLimit(f"{name} must be a non-negative integer", "invalid_event")
            if value and value > self.max_payload:
                raise WyomingLimit(f"{name} {value} is over the limit of {self.max_payload} bytes "
                                   "(LEANSPEECH_WYOMING__MAX_PAYLOAD_BYTES)", "payload_too_large")
        if data_length:
            data = {**data, **_json_object(await self.reader.readexactly(data_length), "event data")}
        payload = await self.reader.readexactly(payload_length) if payload_length else None
        kind = header.get("type")
        if not isinstance(kind, str):
            raise WyomingLimit("an event needs a 'type' string", "invalid_event")
        return Event(type=kind, data=data, payload=payload)


def _json_object(raw: bytes, what: str) -> dict:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise WyomingLimit(f"the {what} is not readable JSON", "invalid_event") from None
    if not isinstance(value, dict):
        raise WyomingLimit(f"the {what} must be a JSON object", "invalid_event")
    return value


class SpeechToTextHandler(_Handler):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, runtime: Runtime):
        super().__init__(reader, writer, runtime)
        self.request = Transcribe()
        self.turn: TurnTranscriber | None = None
        self.converter: StreamConverter | None = None
        self.ticket: int | None = None

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):  # in a thread: it may look for (and join) models on disk
            await self.write_event((await asyncio.to_thread(asr_info, self.runtime)).event())
        elif Transcribe.is_type(event.type):
            self.request = Transcribe.from_event(event)
        elif AudioStart.is_type(event.type):
            await self._start(AudioStart.from_event(event))
        elif AudioChunk.is_type(event.type):
            return await self._chunk(AudioChunk.from_event(event))
        elif AudioStop.is_type(event.type):
            await self._stop()
        return True  # anything else: ignored, as the protocol says

    async def _start(self, start: AudioStart) -> None:
        await self._drop()  # a new utterance replaces an unfinished one
        try:
            self.converter = StreamConverter(start.rate, start.width, start.channels)
            model, options = await asyncio.to_thread(self._checked, self.request)  # it may look on disk
        except LeanspeechError as exc:
            return await self.error(str(exc), exc.kind)
        self.ticket = await self.runtime.enter_live(PROTOCOL, self._evicted)
        if self.ticket is None:
            return await self.error(f"all {self.runtime.live.max_clients} live sessions are in use; try again later",
                                    "busy")

        async def on_delta(delta: str) -> None:
            await self.write_event(TranscriptChunk(text=delta).event())

        self.turn = self.runtime.turn(model, options, on_delta)
        await self.write_event(TranscriptStart(language=options.language).event())

    def _checked(self, request: Transcribe) -> tuple[str, LiveOptions]:
        model, _ = self.runtime.live_model(request.name)
        options = self.runtime.live_options(language=request.language)
        self.runtime.check_live(model, options)
        return model, options

    async def _chunk(self, chunk: AudioChunk) -> bool:
        """Audio into the turn; False (disconnect) past the utterance or buffer bound."""
        if self.turn is None or self.converter is None:
            await self.error("audio-chunk before audio-start (send audio-start with rate, width and channels "
                             "first)", "audio_not_started")
            return True
        c = self.converter
        try:
            if (chunk.rate, chunk.width, chunk.channels) != (c.rate, c.width, c.channels):
                self.turn.feed(c.flush())
                self.converter = c = StreamConverter(chunk.rate, chunk.width, chunk.channels)
            samples = c.convert(chunk.audio)
            limit = self.runtime.settings.wyoming.max_utterance_s
            if self.turn.seconds + samples.shape[0] / 16000 > limit:
                await self.error(f"the utterance is longer than {limit:g} s (LEANSPEECH_WYOMING__MAX_UTTERANCE_S); "
                                 "send audio-stop sooner", "utterance_too_long")
                return False
            self.turn.feed(samples)
            self.runtime.live.touch(self.ticket)
        except LeanspeechError as exc:
            await self.error(str(exc), exc.kind)
            return exc.kind != "buffer_full"
        self.runtime.observe_live_audio(samples.shape[0] / 16000)
        return True

    async def _stop(self) -> None:
        turn, converter = self.turn, self.converter
        if turn is None or converter is None:
            return await self.error("audio-stop before audio-start", "audio_not_started")
        turn.feed(converter.flush())
        self.turn = None
        self.runtime.live.pin(self.ticket)  # it waits for its transcript now: not idle
        try:
            text = await turn.result()
        except LeanspeechError as exc:
            await self.write_event(TranscriptStop().event())
            return await self.error(str(exc), exc.kind)
        finally:
            self._leave()
        self.runtime.count_request(PROTOCOL)
        await self.write_event(Transcript(text=text, language=turn.language or self.request.language).event())
        await self.write_event(TranscriptStop().event())

    async def _evicted(self) -> None:
        """Another client took this idle utterance's slot (``LiveSlots``): say so and close."""
        with contextlib.suppress(Exception):
            await self.error(self.runtime.live.evicted_message(), "session_evicted")
        self.ticket = None  # the slot is already someone else's
        with contextlib.suppress(Exception):
            self.writer.close()

    def _leave(self) -> None:
        self.runtime.live.leave(self.ticket)
        self.ticket = None

    async def _drop(self) -> None:
        if self.turn is not None:
            await self.turn.cancel()
            self.turn = None
        self._leave()

    async def disconnect(self) -> None:
        await self._drop()


class TextToSpeechHandler(_Handler):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, runtime: Runtime):
        super().__init__(reader, writer, runtime)
        self.rate = 22050
        self.streaming = False
        self.stream_voice: str | None = None
        self.text = ""
        self.audio_open = False

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event((await asyncio.to_thread(tts_info, self.runtime)).event())
        elif Synthesize.is_type(event.type):
            if not self.streaming:  # a streaming client sends this too, for servers that do not stream
                s = Synthesize.from_event(event)
                await self._speak(s.text, s.voice.name if s.voice else None)
                await self._close_audio()
        elif SynthesizeStart.is_type(event.type):
            start = SynthesizeStart.from_event(event)
            self.streaming, self.text = True, ""
            self.stream_voice = start.voice.name if start.voice else None
        elif SynthesizeChunk.is_type(event.type):
            if self.streaming:
                self.text += SynthesizeChunk.from_event(event).text
                limit = self.runtime.settings.tts.max_total_length
                if len(self.text) > limit:  # text that never ends a sentence is held: bounded like any input
                    await self.error(f"more than {limit} characters without a sentence end "
                                     "(LEANSPEECH_TTS__MAX_TOTAL_LENGTH)", "text_too_long")
                    return False
                sentences, self.text = complete_sentences(self.text)
                for sentence in sentences:
                    await self._speak(sentence, self.stream_voice)
        elif SynthesizeStop.is_type(event.type):
            if self.streaming:
                if self.text.strip():
                    await self._speak(self.text, self.stream_voice)
                await self._open_audio()  # an empty stream is still one (empty) audio stream
                await self._close_audio()
                self.streaming, self.text = False, ""
                await self.write_event(SynthesizeStopped().event())
        return True

    async def _open_audio(self, rate: int | None = None) -> None:
        rate = rate or self.rate
        if not self.audio_open:
            self.audio_open = True
            self.rate = rate
            await self.write_event(AudioStart(rate=rate, width=2, channels=1).event())

    async def _close_audio(self) -> None:
        if self.audio_open:
            self.audio_open = False
            await self.write_event(AudioStop().event())

    async def _speak(self, text: str, voice: str | None) -> bool:
        """Synthesize ``text`` onto the open audio stream (opening it); False after an error."""
        voices = self.runtime.voice
        try:
            checked = voices.check(text, voice)
            ticket = self.runtime.syntheses.enter()  # the HTTP syntheses' bound: one thread a synthesis
        except LeanspeechError as exc:
            await self.error(str(exc), exc.kind)
            return False
        try:
            utterance = await voices.open(checked)
        except LeanspeechError as exc:
            ticket.release()
            await self.error(str(exc), exc.kind)
            return False
        try:
            rate = utterance.sample_rate
            await self._open_audio(rate)
            step = self.runtime.settings.wyoming.samples_per_chunk
            async for pcm in utterance.pcm():
                data = np.asarray(pcm, "<i2").tobytes()  # Piper gives int16
                for i in range(0, len(data), step * 2):
                    chunk = AudioChunk(rate=rate, width=2, channels=1, audio=data[i:i + step * 2])
                    await self.write_event(chunk.event())
        except LeanspeechError as exc:
            await self.error(str(exc), exc.kind)
            return False
        finally:
            utterance.close()
            ticket.release()
        self.runtime.count_request(PROTOCOL)
        return True


async def start_wyoming(runtime: Runtime) -> list[AsyncTcpServer]:
    """The Wyoming servers the settings ask for, on the running event loop. A port that
    cannot be had is logged and skipped: the HTTP server is the main job."""
    wy = runtime.settings.wyoming
    host = wy.host
    servers = []
    for port, handler, what, env in ((wy.stt_port, SpeechToTextHandler, "speech-to-text", "STT"),
                                     (wy.tts_port, TextToSpeechHandler, "text-to-speech", "TTS")):
        if port < 0:
            continue
        server = AsyncTcpServer(host, port)
        try:
            await server.start(functools.partial(handler, runtime=runtime))
        except OSError as exc:
            logger.error("cannot listen for Wyoming %s on %s:%d (%s); set LEANSPEECH_WYOMING__%s_PORT to another "
                         "port, or -1 for none", what, host, port, exc.strerror, env)
            continue
        logger.info("Wyoming %s on tcp://%s:%d%s", what, host, port,
                    "" if is_loopback(host) else " (no authentication: the protocol has none)")
        servers.append(server)
    return servers


async def stop_wyoming(servers: list[AsyncTcpServer]) -> None:
    for server in servers:
        with contextlib.suppress(Exception):
            await server.stop()
