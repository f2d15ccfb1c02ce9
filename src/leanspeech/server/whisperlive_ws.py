"""The WhisperLive WebSocket protocol, on ``/v1/live`` and on the live port (any path).

Client -> server: one JSON text frame with the session options, then binary frames of
16 kHz mono PCM (``audio_format`` float32, int16 or uint8), then the bytes ``END_OF_AUDIO``.
Server -> client, always with the client's ``uid``: ``SERVER_READY``; ``WAIT`` (minutes)
when every slot is taken; ``ERROR`` and ``WARNING`` statuses; the language once detected;
``segments`` (the last ``send_last_n_segments`` completed, then the one in progress, times
as strings; with ``enable_diarization``, each completed one's ``speaker``: ``diarize.online``,
where a label may settle); ``DISCONNECT`` at the maximum connection time. After ``END_OF_AUDIO`` the
last audio is decoded, the final segments are sent, and the server closes the socket.

This module only speaks the protocol: each session is a ``LiveTranscriber`` from the
runtime (``Runtime.live_session``), which holds the server's loaded model and decodes
through that model's batcher, with the HTTP requests and the other sessions.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time

import numpy as np
from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from leanspeech.diarize.online import LiveSpeakers
from leanspeech.errors import LeanspeechError
from leanspeech.runtime import Runtime
from leanspeech.server.deps import runtime_of
from leanspeech.server.middleware import chosen_subprotocol
from leanspeech.streaming.driver import LiveTranscriber
from leanspeech.streaming.options import LiveOptions
from leanspeech.streaming.session import LiveSegment

logger = logging.getLogger(__name__)
router = APIRouter()

PROTOCOL = "whisperlive"
END_OF_AUDIO = "END_OF_AUDIO"
FORMATS = {"float32": 4, "int16": 2, "uint8": 1}
IGNORED = ("enable_translation", "target_language")
_logged_ignored: set[str] = set()


#: error kind -> WebSocket close code: a client's bad input (1003), its policy breach (1008:
#: audio faster than it can be decoded), else the server's trouble (1011)
CLOSE_CODES = {"invalid_option": 1003, "buffer_full": 1008}


class ProtocolError(LeanspeechError):
    kind = "invalid_option"


class ClientGone(Exception):
    pass


class IdleTimeout(Exception):
    pass


class KnownSpeaker(BaseModel):
    """A known speaker as WhisperLive's client sends one: a name and a 2-10 s clip, base64."""

    name: str = Field(min_length=1, max_length=64)
    audio_base64: str = Field(min_length=1, max_length=2_000_000)  # 10 s of 16-bit PCM WAV is 427 KB


class ClientConfig(BaseModel):
    """The first frame. ``uid`` is required; the rest default as in WhisperLive's client."""

    model_config = ConfigDict(extra="allow")

    uid: str
    language: str | None = None
    task: str = "transcribe"
    model: str | None = None
    use_vad: bool = True
    send_last_n_segments: int = 10
    no_speech_thresh: float = 0.45
    clip_audio: bool = False
    same_output_threshold: int = 10
    initial_prompt: str | None = None
    vad_parameters: dict | None = None
    word_timestamps: bool = False
    audio_format: str = "float32"
    hotwords: str | list[str] | None = None
    multilingual: bool = False  # leanspeech: detect the language of every decode
    # speakers (WhisperLive's names): online clustering of completed segments (diarize.online)
    enable_diarization: bool = False
    max_speakers: int | None = Field(None, ge=1, le=30)  # None: 10, WhisperLive's default
    known_speakers: list[KnownSpeaker] | None = Field(None, max_length=10)
    diarization_threshold: float | None = Field(None, gt=0, lt=1)


def parse_config(text: str | None) -> ClientConfig:
    if text is None:
        raise ProtocolError("the first frame must be a JSON text frame with the session options (uid, language, ...)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"the first frame is not JSON ({exc.msg} at character {exc.pos})") from None
    except RecursionError:
        raise ProtocolError("the first frame is nested too deeply to read") from None
    if not isinstance(data, dict):
        raise ProtocolError("the first frame must be a JSON object with the session options")
    try:
        cfg = ClientConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "options"
        raise ProtocolError(f"bad session option {where!r}: {first['msg']}") from None
    if cfg.audio_format not in FORMATS:
        raise ProtocolError(f"unknown audio_format {cfg.audio_format!r} (valid: {', '.join(FORMATS)})")
    return cfg


def live_options(cfg: ClientConfig, runtime: Runtime) -> LiveOptions:
    vad = dict(cfg.vad_parameters or {})
    if "onset" in vad:  # WhisperLive's name for Silero's threshold
        vad["threshold"] = vad.pop("onset")
    return runtime.live_options(
        language=cfg.language, task=cfg.task, initial_prompt=cfg.initial_prompt, use_vad=cfg.use_vad,
        vad_parameters=vad, no_speech_threshold=cfg.no_speech_thresh, same_output_threshold=cfg.same_output_threshold,
        clip_audio=cfg.clip_audio, word_timestamps=cfg.word_timestamps, send_last_n_segments=cfg.send_last_n_segments,
        multilingual=cfg.multilingual,
        hotwords=" ".join(cfg.hotwords) if isinstance(cfg.hotwords, list) else cfg.hotwords,
    )


def segment_message(segment: LiveSegment, with_words: bool = False, multilingual: bool = False,
                    speaker: str | None = None) -> dict:
    """A segment in WhisperLive's wire form: times as strings with three decimals."""
    out: dict = {"start": f"{segment.start:.3f}", "end": f"{segment.end:.3f}", "text": segment.text,
                 "completed": segment.completed}
    if speaker is not None:
        out["speaker"] = speaker
    if segment.language is not None and multilingual:
        out["language"] = segment.language
    if with_words:
        out["words"] = [{"word": w.word, "start": f"{w.start:.3f}", "end": f"{w.end:.3f}",
                         "probability": round(w.probability, 4)} for w in segment.words]
    return out


def parse_frame(data: bytes, audio_format: str) -> tuple[np.ndarray, int]:
    """PCM bytes -> float32 samples, and how many samples were not finite (set to 0)."""
    width = FORMATS[audio_format]
    if len(data) % width:
        raise ProtocolError(f"an {audio_format} audio frame must be a multiple of {width} bytes; got {len(data)} bytes")
    if audio_format == "int16":
        return np.frombuffer(data, "<i2").astype(np.float32) / 32768.0, 0
    if audio_format == "uint8":
        return (np.frombuffer(data, np.uint8).astype(np.float32) - 128.0) / 128.0, 0
    samples = np.frombuffer(data, "<f4").astype(np.float32)
    bad = ~np.isfinite(samples)
    count = int(bad.sum())
    if count:
        samples[bad] = 0.0
    return samples, count


def _reason(text: str) -> str:
    data = text.encode()[:120]
    return data.decode(errors="ignore")


class LiveConnection:
    def __init__(self, ws: WebSocket, runtime: Runtime):
        self.ws = ws
        self.runtime = runtime
        self.settings = runtime.settings
        self.uid: str | None = None
        self.warned: set[str] = set()
        self.ticket: int | None = None

    async def send(self, payload: dict) -> None:
        try:
            await self.ws.send_text(json.dumps({"uid": self.uid, **payload}))
        except Exception as exc:  # the socket went away under us
            raise ClientGone() from exc

    async def fail(self, message: str, code: int = 1003) -> None:
        """ERROR status, then a close whose reason says the same."""
        logger.info("live session %s: %s", self.uid, message)
        try:
            await self.send({"status": "ERROR", "message": message})
        except ClientGone:
            return
        await self.close(code, _reason(message))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close, unless the client already went (then there is nothing to say)."""
        if self.ws.application_state == WebSocketState.DISCONNECTED:
            return
        with contextlib.suppress(Exception):  # WebSocketDisconnect, or a send on a closed transport
            await self.ws.close(code, reason)

    async def _evict(self) -> None:
        """Another client took this idle session's slot (``LiveSlots``): say so and close."""
        await self.fail(self.runtime.live.evicted_message(), 1008)

    async def warn(self, key: str, message: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            logger.info("live session %s: %s", self.uid, message)
            await self.send({"status": "WARNING", "message": message})

    async def run(self) -> None:
        lv = self.settings.live
        await self.ws.accept(subprotocol=chosen_subprotocol(self.ws.scope, ("leanspeech", "whisperlive")))
        try:
            first = await asyncio.wait_for(self.ws.receive(), lv.idle_timeout)
        except asyncio.TimeoutError:
            return await self.fail(f"no session options within {lv.idle_timeout:g} s", 1008)
        if first["type"] == "websocket.disconnect":
            return
        try:
            cfg = parse_config(first.get("text"))
            self.uid = cfg.uid
            options = live_options(cfg, self.runtime)
        except LeanspeechError as exc:
            try:  # the uid, if the frame had one, so that the client accepts the message
                self.uid = json.loads(first.get("text") or "{}").get("uid")
            except (ValueError, AttributeError, RecursionError):
                pass
            return await self.fail(str(exc))
        extra = cfg.model_extra or {}
        ignored = sorted(k for k in extra if k in IGNORED and extra[k] not in (None, False, [], ""))
        new = [k for k in ignored if k not in _logged_ignored]
        if new:
            _logged_ignored.update(new)
            logger.info("WhisperLive options accepted and ignored (not supported): %s", ", ".join(new))

        slots = self.runtime.live
        ticket = self.ticket = await self.runtime.enter_live(PROTOCOL, evict=self._evict)
        if ticket is None:
            with contextlib.suppress(ClientGone):
                await self.send({"status": "WAIT", "message": slots.wait_minutes()})
                await self.close(1013, "all live slots are busy; try again later")
            return
        try:
            await self._serve(cfg, options, time.monotonic() + lv.max_connection_time)
        finally:
            slots.leave(ticket)

    async def _speakers(self, cfg: ClientConfig) -> LiveSpeakers | None:
        """The session's speakers when the client asked for them (``enable_diarization`` or
        ``known_speakers``), its reference clips checked as OpenAI's are."""
        if not cfg.enable_diarization and not cfg.known_speakers:
            return None
        from leanspeech.diarize.request import known_speakers_from

        known = cfg.known_speakers or []
        try:
            clips = [base64.b64decode(k.audio_base64, validate=True) for k in known]
        except (binascii.Error, ValueError):
            raise ProtocolError("known_speakers: audio_base64 is not valid base64") from None
        d = self.settings.diarize
        refs = await asyncio.to_thread(known_speakers_from, [k.name for k in known], clips, d.max_known_speakers)
        return await self.runtime.speakers.live(refs, max_speakers=cfg.max_speakers or 10,
                                                threshold=cfg.diarization_threshold or d.live_threshold,
                                                keep_s=self.settings.live.max_buffer_s)

    async def _serve(self, cfg: ClientConfig, options: LiveOptions, deadline: float) -> None:
        speakers: LiveSpeakers | None = None

        async def on_segments(segments: list[LiveSegment], final: bool) -> None:
            labels = await speakers.labels(segments) if speakers is not None else [None] * len(segments)
            await self.send({"segments": [segment_message(s, cfg.word_timestamps, cfg.multilingual, who)
                                          for s, who in zip(segments, labels, strict=True)]})

        async def on_language(language: str, probability: float) -> None:
            await self.send({"language": language, "language_prob": round(probability, 4)})

        try:
            name, warning = await asyncio.to_thread(self.runtime.live_model, cfg.model)  # bad names fail here
            if warning:
                await self.warn("model", warning)
            speakers = await self._speakers(cfg)
            async with self.runtime.live_session(name, options, on_segments=on_segments,
                                                 on_language=on_language) as live:
                await self._stream(cfg, live, deadline, speakers)
        except LeanspeechError as exc:  # the model could not be had (budget, load failure)
            await self.fail(str(exc), 1011 if exc.kind == "memory_budget_exceeded" else 1003)
        except ClientGone:
            logger.info("live session %s: client went away", self.uid)
        finally:
            await self.close(1000)

    async def _stream(self, cfg: ClientConfig, live: LiveTranscriber, deadline: float,
                      speakers: LiveSpeakers | None = None) -> None:
        """Audio in, segments out, until END_OF_AUDIO and the last decode, the deadline, an
        idle timeout, an error or the client leaving."""
        await self.send({"message": "SERVER_READY", "backend": "leanspeech"})
        receiver, processor = tasks = [asyncio.create_task(self._receive(cfg, live, speakers)),
                                       asyncio.create_task(live.run())]
        try:
            done, _ = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()),
                                         return_when=asyncio.FIRST_EXCEPTION)
            if receiver in done and receiver.exception() is None and processor not in done:
                # END_OF_AUDIO: let the last decodes finish (still within the deadline)
                done, _ = await asyncio.wait([processor], timeout=max(0.0, deadline - time.monotonic()))
            if processor in done and processor.exception() is None:
                await self.close(1000, "end of audio")
                return
            error = next((t.exception() for t in done if t.exception() is not None), None)
            if error is None:  # neither finished: the connection time is up
                await self.send({"message": "DISCONNECT"})
                await self.close(1000, f"maximum connection time ({self.settings.live.max_connection_time:g} s)")
            elif isinstance(error, ClientGone):
                logger.info("live session %s: client went away", self.uid)
            elif isinstance(error, IdleTimeout):
                await self.fail(f"no audio for {self.settings.live.idle_timeout:g} s; closing the session", 1000)
            elif isinstance(error, LeanspeechError):
                await self.fail(str(error), CLOSE_CODES.get(error.kind, 1011))
            else:
                logger.error("live session %s failed", self.uid, exc_info=error)
                await self.fail(f"internal error: {type(error).__name__}", 1011)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _receive(self, cfg: ClientConfig, live: LiveTranscriber, speakers: LiveSpeakers | None = None) -> None:
        idle = self.settings.live.idle_timeout
        while True:
            try:
                message = await asyncio.wait_for(self.ws.receive(), idle)
            except asyncio.TimeoutError:
                raise IdleTimeout() from None
            if message["type"] == "websocket.disconnect":
                raise ClientGone()
            data, text = message.get("bytes"), message.get("text")
            if data == END_OF_AUDIO.encode() or (text is not None and text.strip() == END_OF_AUDIO):
                self.runtime.live.pin(self.ticket)  # it waits for its last segments now: not idle
                live.end()
                return
            if text is not None:
                await self.warn("text", "text frames after the options are ignored (send audio as binary frames)")
                continue
            samples, bad = parse_frame(data or b"", cfg.audio_format)
            if bad:
                await self.warn("nan", f"{bad} NaN or infinite samples were replaced by silence")
            live.feed(samples)
            if speakers is not None:
                speakers.feed(samples)
            self.runtime.live.touch(self.ticket)
            self.runtime.observe_live_audio(samples.shape[0] / 16000)


@router.websocket("/v1/live")
async def live(ws: WebSocket) -> None:
    try:
        await LiveConnection(ws, runtime_of(ws)).run()
    except (ClientGone, WebSocketDisconnect):  # a client that went away is no error of the server's
        logger.info("live session: client went away")


class LivePortMiddleware:
    """WebSocket connections on the live port reach ``/v1/live`` whatever their path (the
    WhisperLive client connects to ``ws://host:9090``). HTTP on that port is served as usual."""

    def __init__(self, app, port: int):
        self.app = app
        self.port = port

    async def __call__(self, scope, receive, send):
        server = scope.get("server")
        if scope["type"] == "websocket" and server and server[1] == self.port and scope["path"] != "/v1/live":
            scope = {**scope, "path": "/v1/live", "raw_path": b"/v1/live"}
        return await self.app(scope, receive, send)
