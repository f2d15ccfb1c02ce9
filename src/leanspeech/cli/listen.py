"""``leanspeech listen``: a WhisperLive client for a file or the microphone."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from leanspeech.cli.app import app, fail


@app.command()
def listen(
    file: Path | None = typer.Argument(None, help="Audio file to stream (any format PyAV reads)."),
    mic: bool = typer.Option(False, "--mic", help="Stream the microphone instead (needs leanspeech[mic])."),
    url: str = typer.Option("ws://127.0.0.1:9090", help="Server: the live port, or ws://HOST:8000/v1/live."),
    realtime: bool = typer.Option(
        True, "--realtime/--fast", help="Send at real-time pace, or as fast as the server takes it."
    ),
    language: str | None = typer.Option(None, help="Language code (default: the server detects it)."),
    model: str | None = typer.Option(None, help="Model to ask for (default: the server's)."),
    words: bool = typer.Option(False, "--words", help="Ask for word timestamps and print them."),
    api_key: str | None = typer.Option(
        None, envvar="LEANSPEECH_SERVER__API_KEY", help="Bearer key, if the server has one."
    ),
):
    """Stream audio to a live server and print segments as they arrive; the line in
    progress is rewritten in place, completed segments stay."""
    from leanspeech.audio import decode_audio
    from leanspeech.cli.live_client import LiveClient, file_frames, mic_frames
    from leanspeech.errors import LeanspeechError

    if (file is None) == (not mic):
        fail("give an audio FILE or --mic (one of them)", 2)
    tty = sys.stdout.isatty()
    printed: set[str] = set()

    def show(transcript, message) -> None:
        for seg in transcript.segments():
            if seg["start"] not in printed:
                printed.add(seg["start"])
                line = f"[{float(seg['start']):8.2f} -> {float(seg['end']):8.2f}] {seg['text'].strip()}"
                if words and seg.get("words"):
                    line += "\n    " + " ".join(f"{w['word'].strip()}@{w['start']}" for w in seg["words"])
                sys.stdout.write(("\r\x1b[K" if tty else "") + line + "\n")
        if tty:
            partial = transcript.partial
            sys.stdout.write(
                "\r\x1b[K" + (f"  … {partial['text'].strip()}"[: os.get_terminal_size().columns - 1] if partial else "")
            )
        sys.stdout.flush()

    try:
        if mic:
            frames = mic_frames()
        else:
            if file is None or not file.is_file():
                fail(f"no such file: {file}", 2)
            frames = file_frames(decode_audio(file.read_bytes()))
        client = LiveClient(url, language=language, model=model, word_timestamps=words, api_key=api_key, on_update=show)
        transcript = client.stream(frames, pace=1.0 if realtime or mic else None)
    except LeanspeechError as exc:
        fail(str(exc), 1)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if tty:
        sys.stdout.write("\r\x1b[K")
    for warning in transcript.warnings:
        typer.echo(f"server warning: {warning}", err=True)
    if transcript.disconnected:
        typer.echo("the server ended the session (maximum connection time)", err=True)
