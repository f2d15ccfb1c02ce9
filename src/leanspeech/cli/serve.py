"""``leanspeech serve``."""

from __future__ import annotations

import typer

from leanspeech.cli.app import app, fail, settings


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default 127.0.0.1; 0.0.0.0 exposes it)."),
    port: int | None = typer.Option(None, help="HTTP port (default 8000)."),
    model: str | None = typer.Option(None, "--model", "-m", help="Default STT model (served for 'whisper-1')."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    precision: str | None = typer.Option(None, "--precision", "-p", help="STT precision (auto, int8, float32, ...)."),
    budget: str | None = typer.Option(None, help="Memory budget for models, e.g. 4GiB."),
    ttl: int | None = typer.Option(None, help="Seconds an idle model stays loaded (-1 never, 0 at once)."),
    api_key: str | None = typer.Option(
        None, envvar=None, help="Require this bearer key (prefer LEANSPEECH_SERVER__API_KEY)."
    ),
    batching: bool | None = typer.Option(None, "--batching/--no-batching", help="Decode concurrent requests together."),
    pack_requests: bool | None = typer.Option(
        None, "--pack-requests/--no-pack-requests",
        help="Pack short windows of concurrent requests into shared 30 s windows (one tenant's traffic)."),
    encoder_padding: float | None = typer.Option(
        None, "--encoder-padding", min=0, max=30,
        help="Encoder input of a short window: its audio plus S seconds, rounded up to 5 s, not Whisper's 30 s "
        "(opt-in: docs, benchmark \"A shorter encoder input for short windows\")."),
    live_port: int | None = typer.Option(None, help="WhisperLive WebSocket port (default 9090; -1 = none)."),
    wyoming_host: str | None = typer.Option(None, help="Wyoming bind address (default 127.0.0.1: the protocol has no "
                                            "authentication)."),
    wyoming_stt_port: int | None = typer.Option(None, help="Wyoming STT TCP port (default 10300; -1 = off)."),
    wyoming_tts_port: int | None = typer.Option(None, help="Wyoming TTS TCP port (default 10200; -1 = off)."),
    use_ray: bool | None = typer.Option(None, "--ray/--no-ray", help="Serve as Ray Serve replicas "
                                        "(pip install 'leanspeech[ray]')."),
    replicas: int | None = typer.Option(None, "--replicas", min=1, help="With --ray: a fixed number of replicas."),
    min_replicas: int | None = typer.Option(None, "--min-replicas", min=0, help="With --ray: autoscaling, fewest."),
    max_replicas: int | None = typer.Option(None, "--max-replicas", min=1, help="With --ray: autoscaling, most."),
    target_ongoing: float | None = typer.Option(None, "--target-ongoing-requests",
                                                help="With --ray: requests in flight per replica to scale for."),
    ray_address: str | None = typer.Option(None, "--address", help="With --ray: the cluster to join (auto, or "
                                           "HOST:6379); default a local one."),
    replica_cpus: float | None = typer.Option(None, "--replica-cpus", help="With --ray: CPUs per replica."),
    replica_gpus: float | None = typer.Option(None, "--replica-gpus", help="With --ray: GPUs per replica."),
):
    """Serve the OpenAI audio and Realtime APIs, WhisperLive, Wyoming and the monitoring endpoints (offline,
    bundled model by default)."""
    from leanspeech.config import Settings
    from leanspeech.errors import LeanspeechError
    from leanspeech.logs import setup_logging
    from leanspeech.precision import check_precision
    from leanspeech.server.run import run_server

    cfg = settings()
    data = cfg.model_dump()
    for section, key, value in (
        ("server", "host", host),
        ("server", "port", port),
        ("stt", "model", model),
        ("stt", "device", device),
        ("stt", "precision", precision),
        ("memory", "budget", budget),
        ("stt", "model_ttl", ttl),
        ("server", "api_key", api_key),
        ("server", "batching", batching),
        ("server", "pack_requests", pack_requests),
        ("stt", "encoder_padding", encoder_padding),
        ("live", "port", live_port),
        ("wyoming", "host", wyoming_host),
        ("wyoming", "stt_port", wyoming_stt_port),
        ("wyoming", "tts_port", wyoming_tts_port),
        ("ray", "enabled", use_ray),
        ("ray", "replicas", replicas),
        ("ray", "min_replicas", min_replicas),
        ("ray", "max_replicas", max_replicas),
        ("ray", "target_ongoing_requests", target_ongoing),
        ("ray", "address", ray_address),
        ("ray", "cpus_per_replica", replica_cpus),
        ("ray", "gpus_per_replica", replica_gpus),
    ):
        if value is not None:
            data[section][key] = value
    if cfg.server.api_key is not None and api_key is None:
        data["server"]["api_key"] = cfg.server.api_key.get_secret_value()
    try:
        check_precision(data["stt"]["precision"])
        cfg = Settings.model_validate(data)
    except LeanspeechError as exc:
        fail(str(exc), 2)
    except Exception as exc:
        fail("invalid settings: " + " ".join(str(exc).splitlines()[:3]), 2)
    setup_logging(cfg.log_level)
    if cfg.ray.enabled:
        from leanspeech.server.ray_serve import run_ray_server

        try:
            run_ray_server(cfg)
        except LeanspeechError as exc:
            fail(str(exc), 2)
        return
    run_server(cfg)
