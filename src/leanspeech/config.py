"""One Settings object for everything, read once by the CLI or the server.

Env names are ``LEANSPEECH_`` + the field path with ``__`` between levels, for example
``LEANSPEECH_STT__PRECISION=int8``. The names that today's deployments use are read too
(``WHISPER_MODEL_SIZE``, ``DEVICE_TYPE``, ``WL_COMPUTE_TYPE``, ``MODEL_DTYPE``,
``USE_INT8_QUANTIZATION``, ...), from the environment and from ``.env``, so a user can bring
their ``.env`` over; when both are set, the ``LEANSPEECH_`` name wins.

The core never reads this module's environment: each component gets its slice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from leanspeech.memory import parse_bytes
from leanspeech.models.store import default_model_dir
from leanspeech.precision import PRECISIONS

Precision = Literal[PRECISIONS]  # type: ignore[valid-type]


def _byte_size(value: str) -> str:
    parse_bytes(value)  # raises with an example of a valid size
    return value


ByteSize = Annotated[str, AfterValidator(_byte_size)]


def _mmap_threshold(value: str) -> str:
    if value.strip().lower() == "auto":
        return "auto"
    if (parse_bytes(value) or 0) > 32 * 1024 * 1024:  # glibc refuses more (HEAP_MAX_SIZE / 2)
        raise ValueError(f"at most 32MiB (glibc's limit), got {value!r}")
    return value


def _blank_none(value: Any) -> Any:
    """An empty value (``VAR=`` in the environment) or "none" means None."""
    return None if isinstance(value, str) and value.strip().lower() in ("", "none") else value


#: Seconds, or None when set empty or to "none".
OptionalSeconds = Annotated[float | None, BeforeValidator(_blank_none)]


def _language(value: str | None) -> str | None:
    from leanspeech.stt.options import check_language

    return check_language(value)
TTSPrecision = Literal["auto", "float32", "float16", "int8"]


class STTSettings(BaseModel):
    model: str = Field("tiny.en", description="Whisper model: a catalog name or a local CTranslate2 model directory.")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N.")
    precision: Precision = Field("auto", description="Compute type; auto = int8_float16 on CUDA, int8 on CPU.")
    cpu_threads: int = Field(0, ge=0, description="CPU threads per model (0 = all cores this process may use).")
    blas_threads: int = Field(
        1, ge=0, le=256, description="Threads numpy's BLAS (OpenBLAS) may use in the server and the CLI (0 = its "
        "own): its threads busy-wait after each product and take the model's cores (docs, benchmark "
        "\"numpy's BLAS threads\").")
    beam_size: int = Field(5, ge=1, le=16, description="Beam size for decoding (1 = greedy).")
    batch_size: int = Field(
        8, ge=0, le=64,
        description="Windows decoded together for a long file (0 = sequential), at most what BATCH_MEMORY holds; "
        "fewer lower the peak for some speed (docs, benchmark \"Windows per decode of a file\").")
    batch_memory: ByteSize = Field(
        "192MiB",
        description="Upper bound on the extra memory a batched decode may use; the batch is cut to fit.",
    )
    vad: bool = Field(True, description="Skip silence with Silero VAD before decoding.")
    language: Annotated[str | None, AfterValidator(_language)] = Field(
        None, description="Language code; empty = detect (English-only models: en).")
    multilingual: bool = Field(
        False, description="Detect the language of every segment (a file may switch languages); multilingual models."
    )
    hotwords: str | None = Field(None, description="Words to spell as given (product names, jargon), every request.")
    model_ttl: int = Field(300, ge=-1, description="Seconds an idle model stays loaded (-1 never unload, 0 at once).")
    quantize_on_disk: bool = Field(
        False, description="On first load at precision P, store a P copy of the weights and use it later."
    )
    pack_files: bool = Field(
        True, description="Many files at once (transcribe FILE..., batch): pack short windows of several files into "
        "one 30 s window, one encode for all (a known language; CTranslate2). See benchmarks/packing.py.")
    block_seconds: float = Field(
        300.0, ge=60, le=3600, description="A long file is read, VAD-cut and planned this many seconds at a time; "
        "memory holds one block of samples, whatever the file's length; smaller blocks lower the peak for some speed "
        "(docs, benchmark \"Block size of long files\").")
    encoder_padding: OptionalSeconds = Field(
        None, ge=0, le=30, description="Encoder input of a short window: its audio plus this many seconds, rounded up "
        "to 5 s (CTranslate2); empty = Whisper's 30 s. See benchmarks/encoder_padding.py.")


class TTSSettings(BaseModel):
    voice: str = Field("en_US-joe-medium", description="Piper voice: a catalog name or a local .onnx path.")
    precision: TTSPrecision = Field("auto", description="ONNX variant: auto, float32, float16 or int8.")
    max_chunk_length: int = Field(280, ge=20, description="Longest text chunk synthesized at once (characters).")
    max_total_length: int = Field(3000, ge=1, description="Longest input accepted (characters).")
    model_ttl: int = Field(300, ge=-1, description="Seconds an idle voice stays loaded (-1 never, 0 at once).")


MIN_API_KEY_LENGTH = 16


def _api_key(value: SecretStr | None) -> SecretStr | None:
    """An empty or short key is refused: it would look like protection and give none."""
    if value is not None and len(value.get_secret_value().strip()) < MIN_API_KEY_LENGTH:
        raise ValueError(f"the API key must be at least {MIN_API_KEY_LENGTH} characters (got "
                         f"{len(value.get_secret_value().strip())}); unset it to serve without a key, or make one "
                         "with: python -c 'import secrets; print(secrets.token_urlsafe(24))'")
    return value


class DiarizeSettings(BaseModel):
    model_ttl: int = Field(300, ge=-1, description="Seconds the idle speaker-embedding model (CAM++) stays loaded "
                           "(-1 never, 0 at once).")
    max_known_speakers: int = Field(4, ge=0, le=10, description="Most known speakers (name and reference clip) "
                                    "one request may send.")
    live_threshold: float = Field(0.6, gt=0, lt=1, description="Live diarization (WhisperLive enable_diarization): "
                                  "cosine similarity a segment's voice needs to join a speaker heard before.")


class ServerSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Bind address. Loopback by default; 0.0.0.0 exposes it.")
    port: int = Field(8000, ge=0, le=65535, description="HTTP port.")
    api_key: Annotated[SecretStr | None, AfterValidator(_api_key)] = Field(
        None, description="If set (16 characters or more), every HTTP route but /health and the page's files, every "
        "WebSocket and every port but Wyoming's needs it: 'Authorization: Bearer <key>', or a WebSocket subprotocol.")
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Host names the server answers to (JSON list; '*' = any). Empty: the "
        "loopback names (localhost, 127.0.0.1, ::1) when bound to loopback, which stops DNS rebinding; any otherwise.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Allowed CORS origins (JSON list); empty = CORS off. WebSocket Origins "
        "must be the server's own or one of these."
    )
    max_upload_size: ByteSize = Field("25MB", description="Largest accepted upload.")
    max_audio_seconds: float = Field(
        10800.0, gt=0, description="Longest audio an upload may decode to (seconds): checked on the container's "
        "duration before decoding and while decoding (headers can lie); past it, 413.")
    max_transcriptions: int = Field(
        8, ge=1, le=256, description="HTTP transcriptions and translations in flight at once; more get 429 with "
        "Retry-After at once.")
    max_speech: int = Field(
        4, ge=1, le=256, description="HTTP speech syntheses in flight at once; more get 429 with Retry-After at once.")
    max_text_length: int = Field(
        2000, ge=16, le=100000, description="Longest prompt or hotwords accepted (characters), on every front door.")
    allow_downloads: bool = Field(
        False, description="Let requests (and POST /v1/models/NAME) download catalog models from the Hugging Face "
        "hub; off: the server loads only models already on disk.")
    batch_window_ms: float = Field(10.0, ge=0, description="How long the batcher waits to collect concurrent windows.")
    max_batch: int = Field(8, ge=1, le=64, description="Most windows decoded in one CTranslate2 call.")
    max_queue: int = Field(64, ge=1, description="Windows waiting for decode; beyond it requests get 429.")
    batching: bool = Field(True, description="Decode concurrent requests together.")
    pack_requests: bool = Field(
        False, description="With batching: pack short windows of concurrent requests side by side into shared 30 s "
        "windows, one encode for all; each request gets the words aligned to its own audio (a known language; "
        "CTranslate2). Off by default: a request's text then depends on what it was packed with. For one tenant's "
        "traffic (docs, \"Long files and batching\").")
    page: bool = Field(True, description="Serve the web page at / (its files under /ui/).")
    plan_timeout: float = Field(300.0, gt=0, description="Seconds a quick plan from the page (POST /plan) may run.")


class LiveSettings(BaseModel):
    port: int = Field(
        9090,
        ge=-1,
        le=65535,
        description="Port of the WhisperLive WebSocket (any path); -1 = none (ws://HOST:PORT/v1/live stays).",
    )
    max_clients: int = Field(4, ge=1, description="Live sessions at once (WhisperLive, Realtime, Wyoming); more get "
                             "the protocol's busy answer (WhisperLive's WAIT).")
    evict_idle_s: float = Field(
        2.0, ge=0, le=3600, description="A session that has sent no audio for this long gives its slot to a new "
        "session when every slot is taken (it gets the protocol's error and a close); 0 = never: idle connections "
        "then hold slots until IDLE_TIMEOUT.")
    max_buffer_s: float = Field(
        60.0, ge=5, le=3600, description="Seconds of audio a live session may hold ahead of its decoder (sent faster "
        "than real time); past it, the protocol's error and a close.")
    max_message_bytes: ByteSize = Field(
        "4MiB", description="Largest WebSocket message (WhisperLive frames, Realtime events); larger: close 1009.")
    max_connection_time: float = Field(600.0, gt=0, description="Seconds a live session may last before DISCONNECT.")
    idle_timeout: float = Field(30.0, gt=0, description="Seconds without a frame before a live session is closed.")
    context_s: float = Field(
        10.0, ge=2, le=30, description="Seconds of audio each live decode sees (the rolling buffer)."
    )
    step_s: float = Field(0.5, ge=0.1, le=5, description="New audio needed before the next live decode.")
    pause_s: float = Field(0.5, ge=0.1, le=5, description="Silence (VAD) that completes the segment in progress.")
    beam_size: int = Field(1, ge=1, le=16, description="Beam size of live decodes (1 = greedy, the fastest).")
    encoder_padding: OptionalSeconds = Field(
        5.0, ge=0, le=30, description="Encoder input of a live decode: the buffer plus this many seconds, rounded up "
        "to 5 s (CTranslate2); empty = Whisper's 30 s (docs, benchmark \"Live decodes with a shorter encoder input\").")


class RealtimeSettings(BaseModel):
    max_append_bytes: ByteSize = Field(
        "2MiB", description="Most audio one Realtime API input_audio_buffer.append may carry (decoded bytes; 43 s of "
        "pcm16 at 24 kHz); the WebSocket message limit grows to fit it."
    )
    max_items_in_flight: int = Field(
        4, ge=1, le=64, description="Committed items of one session still being transcribed; a commit past it gets "
        "an error event and its audio is dropped.")


class WyomingSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Bind address of the Wyoming ports. The protocol has no "
                      "authentication: with an API key set, a non-loopback host needs ALLOW_UNAUTHENTICATED.")
    allow_unauthenticated: bool = Field(
        False, description="Serve Wyoming on a non-loopback host although an API key is set (Wyoming cannot carry it).")
    idle_timeout: float = Field(30.0, gt=0, le=3600, description="Seconds without an event before a Wyoming "
                                "connection is closed (and its live slot freed).")
    max_utterance_s: float = Field(120.0, gt=0, le=3600, description="Longest utterance one transcription may "
                                   "carry (seconds); past it, an error event and a close.")
    max_payload_bytes: ByteSize = Field("1MiB", description="Largest event payload (an audio-chunk) or data block "
                                        "a Wyoming client may send; larger: an error event and a close.")
    stt_port: int = Field(10300, ge=-1, le=65535,
                          description="TCP port of the Wyoming speech-to-text service (Home Assistant); -1 = off.")
    tts_port: int = Field(10200, ge=-1, le=65535,
                          description="TCP port of the Wyoming text-to-speech service (Home Assistant); -1 = off.")
    samples_per_chunk: int = Field(1024, ge=64, le=65536, description="Samples per Wyoming audio-chunk sent.")


class RaySettings(BaseModel):
    """``leanspeech serve --ray``: the same app as Ray Serve replicas (``pip install 'leanspeech[ray]'``)."""

    enabled: bool = Field(False, description="Serve through Ray Serve (replicas behind Ray's HTTP proxy).")
    address: str | None = Field(None, description="Ray cluster to join (e.g. auto, or HOST:6379); empty = start a "
                                "local one.")
    replicas: int = Field(1, ge=1, description="Fixed number of replicas (when no autoscaling bounds are set).")
    min_replicas: int | None = Field(None, ge=0, description="Autoscaling: fewest replicas (with max_replicas).")
    max_replicas: int | None = Field(None, ge=1, description="Autoscaling: most replicas.")
    target_ongoing_requests: float = Field(2.0, gt=0, description="Autoscaling: requests in flight per replica "
                                           "that it aims for.")
    cpus_per_replica: float = Field(1.0, ge=0, description="CPUs Ray reserves for each replica.")
    gpus_per_replica: float = Field(0.0, ge=0, description="GPUs Ray reserves for each replica (fractions allowed).")
    max_ongoing_requests: int = Field(16, ge=1, description="Requests one replica takes at once; more wait in the "
                                      "proxy.")
    graceful_shutdown_s: float = Field(30.0, ge=0, description="Seconds a stopping replica lets in-flight requests "
                                       "finish.")


class MemorySettings(BaseModel):
    budget: ByteSize | None = Field(
        None, description="Most memory the loaded models may take (e.g. 4GiB); empty = no limit."
    )
    cleanup_interval: int = Field(
        0, ge=0, description="Run garbage collection and unload idle models every N requests (0 = off)."
    )
    trim_interval: float = Field(
        10.0,
        ge=0,
        description="Seconds between hand-backs of freed heap pages to the OS (glibc malloc_trim) while the server "
        "works; 0 = off.",
    )
    malloc_arenas: int = Field(
        2,
        ge=0,
        le=64,
        description="Most glibc malloc arenas the server's threads share (mallopt M_ARENA_MAX), and one more for "
        "the thread a CTranslate2 model loads in; 0 = glibc's default (8 per core).",
    )
    malloc_mmap_threshold: Annotated[str, AfterValidator(_mmap_threshold)] = Field(
        "auto",
        description="Allocations this large or larger get their own memory mapping, handed back to the OS when "
        "freed (glibc mallopt M_MMAP_THRESHOLD), so a long file's peak stays flat; 0 = glibc's own (a threshold "
        "that rises up to 32 MiB). auto: 4MiB where files are transcribed (transcribe, batch, Transcriber), "
        "glibc's own in the server, whose throughput gains from the heap's reuse (docs, \"Long files and batching\").",
    )


# env name -> (section, field); USE_INT8_QUANTIZATION is handled on its own below.
LEGACY_ENV: dict[str, tuple[str, str]] = {
    "WHISPER_MODEL_SIZE": ("stt", "model"),
    "DEVICE_TYPE": ("stt", "device"),
    "WL_COMPUTE_TYPE": ("stt", "precision"),
    "MODEL_DTYPE": ("tts", "precision"),
    "MAX_CHUNK_LENGTH": ("tts", "max_chunk_length"),
    "MAX_TOTAL_LENGTH": ("tts", "max_total_length"),
    "MEMORY_CLEANUP_INTERVAL": ("memory", "cleanup_interval"),
}
LEGACY_ALIASES = {f"{s}.{f}": name for name, (s, f) in LEGACY_ENV.items()}
LEGACY_ALIASES["tts.precision"] = "MODEL_DTYPE, USE_INT8_QUANTIZATION"


class LegacyEnvSource(PydanticBaseSettingsSource):
    """Reads the pre-leanspeech names from the environment and the dotenv file."""

    def __init__(self, settings_cls: type[BaseSettings], env_file: str | None):
        super().__init__(settings_cls)
        self.env_file = env_file

    def get_field_value(self, field, field_name):  # pragma: no cover - not used
        return None, field_name, False

    def _values(self) -> dict[str, str]:
        values: dict[str, str] = {}
        if self.env_file and Path(self.env_file).is_file():
            from dotenv import dotenv_values

            values.update({k.upper(): v for k, v in dotenv_values(self.env_file).items() if v is not None})
        values.update({k.upper(): v for k, v in os.environ.items()})
        return values

    def __call__(self) -> dict[str, Any]:
        env = self._values()
        out: dict[str, dict[str, Any]] = {}
        for name, (section, field) in LEGACY_ENV.items():
            if env.get(name, "") != "":
                out.setdefault(section, {})[field] = env[name].strip()
        if env.get("USE_INT8_QUANTIZATION", "").strip().lower() in ("1", "true", "yes", "on"):
            out.setdefault("tts", {})["precision"] = "int8"  # wins over MODEL_DTYPE, as deployments expect
        if "tts" in out and out["tts"].get("precision") in ("bfloat16",):
            out["tts"]["precision"] = "float16"  # ONNX Runtime's CPU path has no bfloat16 variant
        return out


class Settings(BaseSettings):
    """All of leanspeech's settings. Build once with ``Settings()``."""

    model_config = SettingsConfigDict(
        env_prefix="LEANSPEECH_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        case_sensitive=False,
    )

    strict_precision: bool = Field(False, description="Turn every precision fallback into an error.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level of the CLI and server."
    )
    model_dir: Path = Field(
        default_factory=default_model_dir, description="Where leanspeech keeps pulled and quantized models."
    )
    offline: bool = Field(False, description="Never download (also on when HF_HUB_OFFLINE=1).")
    stt: STTSettings = Field(default_factory=STTSettings)
    tts: TTSSettings = Field(default_factory=TTSSettings)
    diarize: DiarizeSettings = Field(default_factory=DiarizeSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    live: LiveSettings = Field(default_factory=LiveSettings)
    realtime: RealtimeSettings = Field(default_factory=RealtimeSettings)
    wyoming: WyomingSettings = Field(default_factory=WyomingSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)

    @model_validator(mode="after")
    def _wyoming_needs_loopback_with_a_key(self) -> Settings:
        wy = self.wyoming
        serves = wy.stt_port >= 0 or wy.tts_port >= 0
        if serves and self.server.api_key is not None and not is_loopback(wy.host) and not wy.allow_unauthenticated:
            raise ValueError(
                f"Wyoming would serve on {wy.host} without the API key (its protocol cannot carry one): bind it to "
                "loopback (LEANSPEECH_WYOMING__HOST=127.0.0.1), turn its ports off (-1), or opt in with "
                "LEANSPEECH_WYOMING__ALLOW_UNAUTHENTICATED=true")
        return self

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        env_file = settings_cls.model_config.get("env_file")
        legacy = LegacyEnvSource(settings_cls, env_file if isinstance(env_file, str) else None)
        return (init_settings, env_settings, dotenv_settings, legacy, file_secret_settings)

    @property
    def is_offline(self) -> bool:
        return self.offline or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")

    def redacted(self) -> dict:
        """The effective settings as plain data, with secrets replaced."""
        data = self.model_dump(mode="json")
        if self.server.api_key is not None:
            data["server"]["api_key"] = "**********"
        return data


def is_loopback(host: str) -> bool:
    """Whether a bind address or Host name is this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def settings_rows() -> list[tuple[str, str, str, str]]:
    """(env name, alias, default, meaning) for every setting; the docs' configuration table comes from this."""
    rows = []

    def walk(model: type[BaseModel], path: list[str]) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, [*path, name])
                continue
            env = "LEANSPEECH_" + "__".join([*path, name]).upper()
            if field.default_factory is not None:
                default = "~/.cache/leanspeech/models" if name == "model_dir" else str(field.default_factory())  # type: ignore[call-arg]
            else:
                default = (
                    ""
                    if field.default is None
                    else str(field.default).lower()
                    if isinstance(field.default, bool)
                    else str(field.default)
                )
            alias = LEGACY_ALIASES.get(".".join([*path, name]), "")
            rows.append((env, alias, default, field.description or ""))

    walk(Settings, [])
    return rows


def settings_markdown() -> str:
    lines = ["| env name | alias | default | meaning |", "|---|---|---|---|"]
    for env, alias, default, meaning in settings_rows():
        lines.append(
            f"| `{env}` | {f'`{alias}`' if alias else ''} | `{default}` | {meaning} |".replace("``", "(empty)")
        )
    return "\n".join(lines)
