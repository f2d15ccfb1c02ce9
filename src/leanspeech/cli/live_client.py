"""A WhisperLive protocol client: stream 16 kHz audio to ``leanspeech serve`` (or any
WhisperLive server) and receive segments. Used by ``leanspeech listen`` and
``benchmarks/live_latency.py``."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from leanspeech.errors import LeanspeechError

END_OF_AUDIO = b"END_OF_AUDIO"


class LiveClientError(LeanspeechError):
    kind = "live_error"


@dataclass
class LiveTranscript:
    """What the client has seen: completed segments by start time, the partial in
    progress, and every message with the monotonic time it arrived."""

    completed: dict[str, dict] = field(default_factory=dict)
    partial: dict | None = None
    messages: list[tuple[float, dict]] = field(default_factory=list)
    language: str | None = None
    warnings: list[str] = field(default_factory=list)
    disconnected: bool = False

    def text(self) -> str:
        return " ".join(s["text"].strip() for s in self.segments())

    def segments(self) -> list[dict]:
        return [self.completed[k] for k in sorted(self.completed, key=float)]


class LiveClient:
    def __init__(self, url: str, *, uid: str | None = None, language: str | None = None, model: str | None = None,
                 task: str = "transcribe", use_vad: bool = True, word_timestamps: bool = False,
                 initial_prompt: str | None = None, api_key: str | None = None, audio_format: str = "float32",
                 on_update: Callable[[LiveTranscript, dict], None] | None = None):
        self.url = url
        self.uid = uid or str(uuid.uuid4())
        self.options = {"uid": self.uid, "language": language, "task": task, "model": model, "use_vad": use_vad,
                        "send_last_n_segments": 10, "no_speech_thresh": 0.45, "clip_audio": False,
                        "same_output_threshold": 10, "initial_prompt": initial_prompt, "vad_parameters": None,
                        "word_timestamps": word_timestamps, "audio_format": audio_format}
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self.on_update = on_update
        self.transcript = LiveTranscript()
        self._error: str | None = None

    def _handle(self, message: dict) -> None:
        t = self.transcript
        t.messages.append((time.monotonic(), message))
        status = message.get("status")
        if status == "ERROR":
            self._error = message.get("message", "server error")
        elif status == "WAIT":
            self._error = f"the server is full; try again in about {message.get('message')} minutes"
        elif status == "WARNING":
            t.warnings.append(message.get("message", ""))
        elif message.get("message") == "DISCONNECT":
            t.disconnected = True
        elif "language" in message:
            t.language = message["language"]
        elif "segments" in message:
            t.partial = None
            for seg in message["segments"]:
                if seg.get("completed"):
                    t.completed[seg["start"]] = seg
                else:
                    t.partial = seg
        if self.on_update is not None:
            self.on_update(t, message)

    def stream(self, frames: Iterable[np.ndarray], *, pace: float | None = 1.0, frame_s: float = 0.1,
               timeout: float = 300.0) -> LiveTranscript:
        """Send ``frames`` (float32 arrays), each ``frame_s`` long, at ``pace`` times real time
        (None: as fast as the connection takes them), then END_OF_AUDIO; return when the
        server has sent the final segments and closed."""
        from websockets.exceptions import ConnectionClosed, InvalidStatus
        from websockets.sync.client import connect

        try:
            ws = connect(self.url, open_timeout=30, max_size=None, additional_headers=self.headers)
        except InvalidStatus as exc:
            raise LiveClientError(
                f"{self.url} refused the connection: HTTP {exc.response.status_code}"
                + (" (check the API key)" if exc.response.status_code in (401, 403) else "")
            ) from None
        except OSError as exc:
            raise LiveClientError(f"cannot connect to {self.url}: {exc} (is 'leanspeech serve' running?)") from None
        with ws:
            ws.send(json.dumps(self.options))
            ready = json.loads(ws.recv(timeout=60))
            self._handle(ready)
            if ready.get("message") != "SERVER_READY":
                raise LiveClientError(self._error or f"unexpected first message: {ready}")

            def read() -> None:
                try:
                    while True:
                        self._handle(json.loads(ws.recv(timeout=timeout)))
                except (ConnectionClosed, TimeoutError):
                    pass

            reader = threading.Thread(target=read, name="leanspeech-listen", daemon=True)
            reader.start()
            start = time.monotonic()
            try:
                for i, frame in enumerate(frames):
                    if self._error or self.transcript.disconnected:
                        break
                    ws.send(
                        np.asarray(frame, dtype="<f4").tobytes()
                        if self.options["audio_format"] == "float32"
                        else (np.clip(frame, -1, 1) * 32767).astype("<i2").tobytes()
                    )
                    if pace:
                        delay = start + (i + 1) * frame_s / pace - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                ws.send(END_OF_AUDIO)
            except ConnectionClosed:
                pass
            reader.join(timeout)
        if self._error:
            raise LiveClientError(self._error)
        return self.transcript


def file_frames(audio: np.ndarray, frame_s: float = 0.1) -> Iterable[np.ndarray]:
    step = int(16000 * frame_s)
    for i in range(0, audio.shape[0], step):
        yield audio[i : i + step]


def mic_frames(frame_s: float = 0.1) -> Iterable[np.ndarray]:
    """Frames from the default microphone until Ctrl-C (needs ``sounddevice``)."""
    try:
        import sounddevice
    except ImportError:
        from leanspeech.errors import OptionalDependencyError

        raise OptionalDependencyError("sounddevice", "mic", "listening to the microphone") from None
    import queue

    frames: queue.Queue = queue.Queue()
    block = int(16000 * frame_s)
    with sounddevice.InputStream(
        samplerate=16000,
        channels=1,
        dtype="float32",
        blocksize=block,
        callback=lambda data, *_: frames.put(data[:, 0].copy()),
    ):
        try:
            while True:
                yield frames.get()
        except KeyboardInterrupt:
            return
