"""Shared test helpers (imported by name; conftest modules cannot be imported reliably)."""

JFK_PHRASE = "ask not what your country can do for you"
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, ask what you can do for "
            "your country.")


def heard_jfk(text: str, max_wer: float = 0.15) -> bool:
    """The whole JFK clip, heard within ``max_wer`` (3 of its 22 words): what must hold on any
    CPU, where an exact phrase can lose a word to another CPU's numerics ("asked not")."""
    return wer(JFK_TEXT, text) < max_wer


def normalized(text: str) -> str:
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()(text)


def wer(ref: str, hyp: str) -> float:
    import jiwer

    return jiwer.wer(normalized(ref), normalized(hyp))


# ---- a live `leanspeech serve` on loopback, for the server and TTS tests ----------------

import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, env: dict, args=(), wait_ready=True, tmp: Path | None = None):
        self.port = free_port()
        self.live_port = free_port()  # never the default 9090: test servers run side by side
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/v1/live"
        self.realtime_url = f"ws://127.0.0.1:{self.port}/v1/realtime"
        # Wyoming is off unless a test asks for it (wyoming=True in env: free ports)
        wyoming = env.pop("wyoming", False) if isinstance(env, dict) else False
        self.wyoming_stt_port = free_port() if wyoming else -1
        self.wyoming_tts_port = free_port() if wyoming else -1
        full = {**os.environ, "HF_HUB_OFFLINE": "1",
                "LEANSPEECH_STT__CPU_THREADS": "2", "LEANSPEECH_LIVE__PORT": str(self.live_port),
                "LEANSPEECH_WYOMING__STT_PORT": str(self.wyoming_stt_port),
                "LEANSPEECH_WYOMING__TTS_PORT": str(self.wyoming_tts_port), **env}
        self.log = open(tmp / f"server-{self.port}.log", "w+") if tmp else subprocess.DEVNULL
        self.proc = subprocess.Popen([sys.executable, "-m", "leanspeech", "serve", "--port", str(self.port), *args],
                                     env=full, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait(ready=wait_ready)

    def wait(self, ready=True, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.logs()}")
            try:
                r = httpx.get(self.url + "/health", timeout=2)
                if r.status_code == 200 or (not ready and r.status_code in (200, 503)):
                    if r.status_code == 200 or "error" in r.json():
                        return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become ready: " + self.logs())

    def logs(self) -> str:
        if hasattr(self.log, "seek"):
            self.log.flush()
            self.log.seek(0)
            return self.log.read()[-3000:]
        return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if hasattr(self.log, "close"):
            self.log.close()


def rss_of(pid: int) -> int:
    import psutil

    return psutil.Process(pid).memory_info().rss


# ---- a WhisperLive protocol client, written from the protocol (not the product's client) ---

import json  # noqa: E402
import threading  # noqa: E402

import numpy as np  # noqa: E402

WHISPERLIVE_OPTIONS = {
    "language": "en", "task": "transcribe", "model": "tiny.en", "use_vad": True, "send_last_n_segments": 10,
    "no_speech_thresh": 0.45, "clip_audio": False, "same_output_threshold": 10, "initial_prompt": None,
    "vad_parameters": None, "word_timestamps": False, "audio_format": "float32",
    # fields a WhisperLive client sends that leanspeech accepts and ignores
    "enable_translation": False, "target_language": "fr", "hotwords": None, "enable_diarization": False,
    "max_speakers": None,
}


class LiveRun:
    def __init__(self):
        self.messages: list[dict] = []
        self.sent_end_at: int | None = None  # len(messages) when END_OF_AUDIO was sent
        self.close_code: int | None = None
        self.close_reason = ""
        self.error: Exception | None = None

    def of(self, key):
        return [m for m in self.messages if key in m]

    def completed_text(self) -> str:
        """The transcript as a WhisperLive client keeps it: completed segments by start time."""
        done: dict[str, str] = {}
        for m in self.of("segments"):
            for seg in m["segments"]:
                if seg["completed"]:
                    done[seg["start"]] = seg["text"]
        return " ".join(t.strip() for _, t in sorted(done.items(), key=lambda kv: float(kv[0])))

    def completed_count(self) -> int:
        return len({seg["start"] for m in self.of("segments") for seg in m["segments"] if seg["completed"]})


def pcm(audio: np.ndarray, fmt: str) -> bytes:
    if fmt == "int16":
        return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    return audio.astype("<f4").tobytes()


def live_session(url: str, audio: np.ndarray | None = None, *, options: dict | None = None, first_frame=None,
                 frame_s: float = 0.1, speed: float = 4.0, frames=None, end=True, uid: str = "test-client",
                 headers=None, timeout: float = 120, on_message=None) -> LiveRun:
    """Stream ``audio`` (or raw ``frames``) over the WhisperLive protocol and collect every
    server message until the server closes."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    run = LiveRun()
    fmt = (options or {}).get("audio_format", "float32")
    with connect(url, open_timeout=30, max_size=None, additional_headers=headers) as ws:
        options_frame = json.dumps({"uid": uid, **WHISPERLIVE_OPTIONS, **(options or {})})
        ws.send(first_frame if first_frame is not None else options_frame)

        def read():
            try:
                while True:
                    run.messages.append(json.loads(ws.recv(timeout=timeout)))
                    if on_message is not None:
                        on_message(run.messages[-1])
            except ConnectionClosed as exc:
                run.close_code = exc.rcvd.code if exc.rcvd else None
                run.close_reason = exc.rcvd.reason if exc.rcvd else ""
            except Exception as exc:  # noqa: BLE001
                run.error = exc

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.time() + 60
        while not run.messages and reader.is_alive() and time.time() < deadline:
            time.sleep(0.01)
        if run.messages and run.messages[0].get("message") == "SERVER_READY":
            if frames is None and audio is not None:
                step = int(16000 * frame_s)
                frames = [pcm(audio[i : i + step], fmt) for i in range(0, len(audio), step)]
            try:
                for frame in frames or ():
                    ws.send(frame)
                    time.sleep(frame_s / speed)
                if end:
                    run.sent_end_at = len(run.messages)
                    ws.send(b"END_OF_AUDIO")
            except ConnectionClosed:
                pass
        reader.join(timeout)
    return run


def load_audio(path) -> np.ndarray:
    from leanspeech.audio import decode_audio

    return decode_audio(Path(path).read_bytes())


def write_repeated(source, times: int, path, pause_s: float = 2.0):
    """``source`` (a speech file) ``times`` over, ``pause_s`` of silence after each, as a 16 kHz
    WAV at ``path``; returns (path, reference text when ``source`` is JFK, seconds)."""
    from leanspeech.audio import SAMPLE_RATE, write_wav

    one = load_audio(source)
    audio = np.concatenate([one, np.zeros(int(pause_s * SAMPLE_RATE), np.float32)] * times)
    write_wav(path, audio)
    return path, " ".join([JFK_TEXT] * times), audio.shape[0] / SAMPLE_RATE


# ---- the hostile tier: a process's peak RSS, and the server's log ------------------------

HOSTILE_KEY = "hostile-test-key-0123456789"


class PeakRSS:
    """The peak RSS of a process, sampled every 20 ms while the block runs."""

    def __init__(self, pid: int):
        import psutil

        self.proc = psutil.Process(pid)
        self.before = self.proc.memory_info().rss
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except Exception:  # noqa: BLE001 - the process ended
                return
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def grew_mib(self) -> float:
        return (self.peak - self.before) / 2**20


def no_tracebacks(server) -> None:
    """The server's log has no traceback: every client failure was handled."""
    server.log.flush()
    with open(server.log.name) as fh:
        log = fh.read()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-4000:]


def server_log(server) -> str:
    server.log.flush()
    with open(server.log.name) as fh:
        return fh.read()


# ---- a Wyoming speech-to-text exchange, with the wyoming package's own client ---------

async def wyoming_transcribe(port: int, audio16k: np.ndarray, rate=16000, width=2, channels=1, language="en"):
    import soxr
    from wyoming.asr import Transcribe
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient

    samples = soxr.resample(audio16k, 16000, rate).astype(np.float32) if rate != 16000 else audio16k
    if width == 4:
        mono = (np.clip(samples, -1, 1) * (2**31 - 1)).astype("<i4")
    else:
        mono = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    data = np.repeat(mono, channels).tobytes()
    events = []
    async with AsyncTcpClient("127.0.0.1", port) as c:
        await c.write_event(Transcribe(language=language).event())
        await c.write_event(AudioStart(rate=rate, width=width, channels=channels).event())
        step = 1024 * width * channels
        for i in range(0, len(data), step):
            await c.write_event(AudioChunk(rate=rate, width=width, channels=channels, audio=data[i:i + step]).event())
        await c.write_event(AudioStop().event())
        while True:
            event = await c.read_event()
            events.append(event)
            if event is None or event.type in ("transcript-stop", "error"):
                return events
