"""The OpenAI Realtime API, transcription sessions, on ``GET /v1/realtime`` (WebSocket).

Event shapes are those of the ``openai`` SDK (``openai.types.realtime``). Client events:
``session.update`` (``transcription_session.update``, the beta name with its flat fields,
too), ``input_audio_buffer.append`` / ``.commit`` / ``.clear``. Server events:
``session.created``, ``session.updated``, ``input_audio_buffer.speech_started`` /
``.speech_stopped`` / ``.committed`` / ``.cleared``,
``conversation.item.input_audio_transcription.delta`` / ``.completed`` / ``.failed`` and
``error``. Conversation (LLM) sessions and their events get an ``error`` that says so.

Audio is pcm16 at 24 kHz (``audio/pcm``) or G.711 at 8 kHz (``audio/pcmu``, ``audio/pcma``),
converted to 16 kHz as it arrives. With server VAD (the default) ``TurnDetector`` cuts the
stream into turns; without it the client commits. Each turn is a ``TurnTranscriber`` from
the runtime: the same live session core (buffer, VAD, agreement), batcher, model manager and
budget as the WhisperLive handler and the HTTP routes. A bad event gets an ``error`` event
and the session goes on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
import uuid
from collections.abc import MutableMapping
from dataclasses import replace
from typing import Any

import numpy as np
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from leanspeech.audio import SAMPLE_RATE
from leanspeech.errors import LeanspeechError
from leanspeech.memory import parse_bytes
from leanspeech.runtime import Runtime
from leanspeech.server.deps import runtime_of
from leanspeech.server.errors import STATUS
from leanspeech.server.middleware import chosen_subprotocol
from leanspeech.server.pcm import StreamConverter
from leanspeech.server.realtime_session import (
    FORMATS,
    RealtimeError,
    SessionConfig,
    TurnDetection,
    apply_update,
    beta_to_ga,
    live_options,
    session_object,
    shape_object,
)
from leanspeech.streaming.turn_detector import TurnDetector
from leanspeech.streaming.turn_transcriber import TurnTranscriber

logger = logging.getLogger(__name__)
router = APIRouter()

PROTOCOL = "realtime"
#: Client events of conversation sessions, which leanspeech does not serve.
CONVERSATION_EVENTS = ("response.create", "response.cancel", "conversation.item.create", "conversation.item.delete",
                       "conversation.item.truncate", "conversation.item.retrieve", "output_audio_buffer.clear")
MIN_COMMIT_S = 0.1  # as OpenAI: a commit needs at least 100 ms of audio


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class RealtimeConnection:
    def __init__(self, ws: WebSocket, runtime: Runtime):
        self.ws = ws
        self.runtime = runtime
        self.session_id = _id("sess")
        self.cfg = SessionConfig(model=runtime.settings.stt.model)
        self.max_append = parse_bytes(runtime.settings.realtime.max_append_bytes) or 2**62
        self._send_lock = asyncio.Lock()
        self._converter = self._new_converter()
        self._detector: TurnDetector | None = None
        self._preroll: list[np.ndarray] = []
        self._clock_s = 0.0  # 16 kHz audio received, seconds
        self._turn: TurnTranscriber | None = None
        self._item: str | None = None
        self._last_item: str | None = None
        self._items: set[asyncio.Task] = set()
        self._gone = False
        self._ticket: int | None = None
        self._reset_audio()  # the default session: pcm16, server VAD

    # ---- sending --------------------------------------------------------------------

    async def send(self, event: dict) -> None:
        if self._gone:
            return
        self.runtime.live.touch(self._ticket)  # a session that is answered is not idle
        async with self._send_lock:
            try:
                await self.ws.send_text(json.dumps({"event_id": _id("event"), **event}))
            except Exception:  # the client went away; the receive loop will see it
                self._gone = True

    async def error(self, exc: RealtimeError, client_event_id: str | None = None) -> None:
        logger.info("realtime session %s: %s", self.session_id, exc.message)
        await self.send({"type": "error", "error": {"type": exc.type, "code": exc.code, "message": exc.message,
                                                    "param": exc.param, "event_id": client_event_id}})

    # ---- the connection -------------------------------------------------------------

    async def run(self) -> None:
        await self.ws.accept(subprotocol=chosen_subprotocol(self.ws.scope, ("realtime",)))
        intent = self.ws.query_params.get("intent")
        slots = self.runtime.live
        ticket = self._ticket = await self.runtime.enter_live(PROTOCOL, self._evicted)
        if ticket is None:
            await self.error(RealtimeError("session_limit_reached", f"all {slots.max_clients} live sessions are in "
                                           f"use; try again in {slots.wait_minutes():g} minutes", None, "server_error"))
            return await self._close(1013, "all live slots are busy")
        try:
            if intent not in (None, "", "transcription"):
                await self.error(RealtimeError("unsupported_session_type", f"intent {intent!r} is not supported: "
                                               "leanspeech serves transcription sessions (?intent=transcription)",
                                               "intent"))
                return await self._close(1008, "transcription sessions only")
            await self._start()
            deadline = time.monotonic() + self.runtime.settings.live.max_connection_time
            while not self._gone:
                try:
                    message = await asyncio.wait_for(self.ws.receive(), max(0.0, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    await self.error(RealtimeError("session_expired", "the maximum connection time "
                                                   f"({self.runtime.settings.live.max_connection_time:g} s) is over"))
                    break
                if message["type"] == "websocket.disconnect":
                    self._gone = True
                    break
                await self._handle(message)
            if not self._gone:  # the session ends: let the committed items finish
                await asyncio.gather(*self._items, return_exceptions=True)
                await self._close(1000, "session over")
        except WebSocketDisconnect:
            self._gone = True
        finally:
            slots.leave(ticket)
            await self._drop()

    async def _evicted(self) -> None:
        """Another client took this idle session's slot (``LiveSlots``): say so and close."""
        await self.error(RealtimeError("session_evicted", self.runtime.live.evicted_message(), None,
                                       "server_error"))
        await self._close(1008, "idle while another client needed the slot")
        self._gone = True

    async def _start(self) -> None:
        model = self.ws.query_params.get("model")
        if model:  # a realtime model name (gpt-realtime...) or a transcription model
            try:
                self.cfg = replace(self.cfg, model=(await asyncio.to_thread(self.runtime.live_model, model))[0])
            except LeanspeechError as exc:
                if not model.startswith(("gpt-realtime", "gpt-4o-realtime", "gpt-4o-mini-realtime")):
                    await self.send({"type": "session.created", "session": session_object(self.cfg, self.session_id)})
                    return await self.error(RealtimeError(exc.kind, f"{exc} (the session uses {self.cfg.model!r})",
                                                          "model"))
        await self.send({"type": "session.created", "session": session_object(self.cfg, self.session_id)})

    async def _close(self, code: int, reason: str) -> None:
        if self.ws.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(Exception):
                await self.ws.close(code, reason)

    async def _drop(self) -> None:
        """Whatever the client left behind: the turn in progress and unfinished items."""
        if self._turn is not None:
            await self._turn.cancel()
            self._turn = None
        for task in list(self._items):
            task.cancel()
        await asyncio.gather(*self._items, return_exceptions=True)

    # ---- client events --------------------------------------------------------------

    async def _handle(self, message: MutableMapping[str, Any]) -> None:
        text = message.get("text")
        if text is None:
            return await self.error(RealtimeError("invalid_event", "binary frames are not part of the Realtime API; "
                                                  "send audio as input_audio_buffer.append events (base64)"))
        try:
            event = json.loads(text)
        except json.JSONDecodeError as exc:
            return await self.error(RealtimeError("invalid_json", f"the event is not JSON ({exc.msg} at character "
                                                  f"{exc.pos})"))
        except RecursionError:
            return await self.error(RealtimeError("invalid_json", "the event is nested too deeply to read"))
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return await self.error(RealtimeError("invalid_event", "an event must be a JSON object with a 'type'",
                                                  "type"))
        kind, event_id = event["type"], event.get("event_id")
        try:
            if kind in ("session.update", "transcription_session.update"):
                session = event.get("session")
                if kind == "transcription_session.update":
                    session = beta_to_ga(shape_object(session, "session"))
                await self._update(await asyncio.to_thread(apply_update, self.cfg, session, self.runtime))
            elif kind == "input_audio_buffer.append":
                await self._append(event)
            elif kind == "input_audio_buffer.commit":
                await self._commit_by_client()
            elif kind == "input_audio_buffer.clear":
                await self._clear()
            elif kind in CONVERSATION_EVENTS:
                raise RealtimeError("unsupported_event", f"{kind} belongs to conversation (LLM) sessions, which "
                                    "leanspeech does not serve; this is a transcription session", "type")
            else:
                raise RealtimeError("invalid_event", f"unknown event type {kind!r} (a transcription session takes "
                                    "session.update and input_audio_buffer.append/commit/clear)", "type")
        except RealtimeError as exc:
            await self.error(exc, event_id)
        except LeanspeechError as exc:
            await self.error(RealtimeError(exc.kind, str(exc), exc.param), event_id)
            if exc.kind == "buffer_full":  # audio faster than it can be decoded: this session ends here
                await self._close(1008, "audio sent faster than it can be transcribed")
                self._gone = True

    async def _update(self, cfg: SessionConfig) -> None:
        old = self.cfg
        self.cfg = cfg
        if (cfg.format, cfg.turn_detection) != (old.format, old.turn_detection):
            self._route(self._converter.flush())
            self._reset_audio()
        await self.send({"type": "session.updated", "session": session_object(cfg, self.session_id)})

    def _new_converter(self) -> StreamConverter:
        _, rate, law = FORMATS[self.cfg.format]
        return StreamConverter(rate, 2, 1, law)

    def _reset_audio(self) -> None:
        self._converter = self._new_converter()
        td = self.cfg.turn_detection
        self._detector = TurnDetector(td.threshold, td.silence_duration_ms / 1000) if td else None
        self._preroll = []

    async def _append(self, event: dict) -> None:
        audio = event.get("audio")
        if not isinstance(audio, str):
            raise RealtimeError("invalid_value", "input_audio_buffer.append needs 'audio': base64 of the audio bytes",
                                "audio")
        if len(audio) * 3 // 4 > self.max_append:
            raise RealtimeError("audio_too_large", f"one append may carry at most {self.max_append} bytes of audio "
                                "(LEANSPEECH_REALTIME__MAX_APPEND_BYTES); send it in smaller appends", "audio")
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise RealtimeError("invalid_value", "'audio' is not valid base64", "audio") from None
        try:
            samples = self._converter.convert(data)
        except LeanspeechError as exc:
            raise RealtimeError("invalid_value", str(exc), "audio") from None
        self.runtime.observe_live_audio(samples.shape[0] / SAMPLE_RATE)
        self.runtime.live.touch(self._ticket)
        start_s = self._clock_s
        self._clock_s += samples.shape[0] / SAMPLE_RATE
        if self._detector is None:
            if self._turn is None:
                await self._begin()
            self._route(samples)
            return
        events = await asyncio.to_thread(self._detector.feed, samples)
        pos = 0
        for ev in events:
            cut = min(max(round((ev.at_s - start_s) * SAMPLE_RATE), pos), samples.shape[0])
            self._route(samples[pos:cut])
            pos = cut
            if ev.kind == "start":
                await self._begin()
                await self.send({"type": "input_audio_buffer.speech_started", "audio_start_ms": round(ev.at_s * 1000),
                                 "item_id": self._item})
            elif self._turn is not None:
                await self.send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": round(ev.at_s * 1000),
                                 "item_id": self._item})
                await self._commit()
        self._route(samples[pos:])

    def _route(self, samples: np.ndarray) -> None:
        """Audio to the turn in progress, or to the prefix padding kept for the next one."""
        if samples.shape[0] == 0:
            return
        if self._turn is not None:
            self._turn.feed(samples)
            return
        keep = self._prefix_samples()
        self._preroll.append(samples)
        total = sum(s.shape[0] for s in self._preroll)
        while self._preroll and total - self._preroll[0].shape[0] >= keep:
            total -= self._preroll.pop(0).shape[0]

    def _prefix_samples(self) -> int:
        """The audio kept before a turn's start (its prefix padding), in samples."""
        return round((self.cfg.turn_detection or TurnDetection()).prefix_padding_ms / 1000 * SAMPLE_RATE)

    async def _begin(self) -> None:
        options = await asyncio.to_thread(live_options, self.cfg, self.runtime)  # it may look on disk
        if self._turn is not None:  # a turn left open by a session.update that changed the audio: it ends here
            await self._commit()
        item = self._item = _id("item")

        async def on_delta(delta: str) -> None:
            await self.send({"type": "conversation.item.input_audio_transcription.delta", "item_id": item,
                             "content_index": 0, "delta": delta})

        self._turn = self.runtime.turn(self.cfg.model, options, on_delta)
        keep = self._prefix_samples()
        preroll = np.concatenate(self._preroll) if self._preroll else np.zeros(0, np.float32)
        self._preroll = []
        if keep:
            self._turn.feed(preroll[-keep:])

    async def _commit_by_client(self) -> None:
        if self._turn is None or self._turn.seconds < MIN_COMMIT_S:
            heard = 0.0 if self._turn is None else self._turn.seconds
            raise RealtimeError("input_audio_buffer_commit_empty", "buffer too small: a commit needs at least "
                                f"{MIN_COMMIT_S * 1000:g} ms of audio; the buffer has {heard * 1000:.2f} ms", None)
        self._route(self._converter.flush())
        self._converter = self._new_converter()
        await self._commit()
        if self._detector is not None:
            self._detector.reset()

    async def _commit(self) -> None:
        turn, item = self._turn, self._item
        assert turn is not None and item is not None
        self._turn = None
        limit = self.runtime.settings.realtime.max_items_in_flight
        if len(self._items) >= limit:  # each item holds its audio and a decode: a bounded number at once
            await turn.cancel()
            raise RealtimeError("too_many_items_in_flight", f"{len(self._items)} committed items are still being "
                                f"transcribed, the most one session may have (LEANSPEECH_REALTIME__MAX_ITEMS_IN_FLIGHT="
                                f"{limit}); this item's audio was dropped: commit after a completed event", None)
        await self.send({"type": "input_audio_buffer.committed", "item_id": item, "previous_item_id": self._last_item})
        self._last_item = item
        self.runtime.count_request(PROTOCOL)
        task = asyncio.create_task(self._complete(turn, item))
        self._items.add(task)
        task.add_done_callback(self._items.discard)

    async def _complete(self, turn: TurnTranscriber, item: str) -> None:
        try:
            text = await turn.result()
        except LeanspeechError as exc:
            _, type_ = STATUS.get(exc.kind, (500, "server_error"))
            await self.send({"type": "conversation.item.input_audio_transcription.failed", "item_id": item,
                             "content_index": 0,
                             "error": {"type": type_, "code": exc.kind, "message": str(exc), "param": exc.param}})
            return
        except Exception as exc:  # a bug: say so on the item, keep the session
            logger.exception("realtime session %s: transcription of %s failed", self.session_id, item)
            await self.send({"type": "conversation.item.input_audio_transcription.failed", "item_id": item,
                             "content_index": 0, "error": {"type": "server_error", "code": "internal_error",
                                                           "message": f"internal error: {type(exc).__name__}",
                                                           "param": None}})
            return
        await self.send({"type": "conversation.item.input_audio_transcription.completed", "item_id": item,
                         "content_index": 0, "transcript": text,
                         "usage": {"type": "duration", "seconds": round(turn.seconds, 3)}})

    async def _clear(self) -> None:
        if self._turn is not None:
            await self._turn.cancel()
            self._turn = None
        self._reset_audio()
        await self.send({"type": "input_audio_buffer.cleared"})


@router.websocket("/v1/realtime")
async def realtime(ws: WebSocket) -> None:
    try:
        await RealtimeConnection(ws, runtime_of(ws)).run()
    except WebSocketDisconnect:  # a client that went away is no error of the server's
        logger.info("realtime session: client went away")
