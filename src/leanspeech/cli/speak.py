"""``leanspeech speak``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from leanspeech.cli.app import app, fail, settings


@app.command()
def speak(
    text: str | None = typer.Argument(None, help="Text to say (default: read stdin)."),
    output: Path = typer.Option(Path("speech.wav"), "--output", "-o", help="Output file ('-' = stdout)."),
    voice: str | None = typer.Option(None, help="Voice (default en_US-joe-medium) or a local .onnx."),
    precision: str | None = typer.Option(None, "--precision", "-p", help="auto, float32, float16 or int8."),
    fmt: str | None = typer.Option(
        None, "--format", "-f", help="wav, mp3, opus, aac, flac or pcm (default: from the file name)."
    ),
    speed: float = typer.Option(1.0, help="0.25-4.0."),
):
    """Text to speech with a Piper voice."""
    import time

    from leanspeech.errors import LeanspeechError
    from leanspeech.logs import setup_logging
    from leanspeech.tts.encode import FORMATS, check_format, encode_stream
    from leanspeech.tts.synthesizer import Synthesizer

    cfg = settings()
    setup_logging(cfg.log_level)
    if text is None:
        if sys.stdin.isatty():
            fail("give the text as an argument or on stdin", 2)
        text = sys.stdin.read()
    chosen = fmt or (output.suffix.lstrip(".").lower() if str(output) != "-" else "wav")
    if chosen == "ogg":
        chosen = "opus"
    try:
        check_format(chosen)
        synth = Synthesizer(
            voice or cfg.tts.voice,
            precision=precision or cfg.tts.precision,
            model_dir=cfg.model_dir,
            max_chunk_length=cfg.tts.max_chunk_length,
            max_total_length=cfg.tts.max_total_length,
        )
        start = time.perf_counter()
        samples = 0

        def counted():
            nonlocal samples
            for pcm in synth.stream(text, speed=speed):
                samples += pcm.shape[0]
                yield pcm

        if chosen == "wav" and str(output) != "-":
            import wave

            with wave.open(str(output), "wb") as out:  # a file gets exact sizes in its header
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(synth.sample_rate)
                for pcm in counted():
                    out.writeframes(pcm.astype("<i2").tobytes())
        else:
            sink = sys.stdout.buffer if str(output) == "-" else open(output, "wb")
            try:
                for data in encode_stream(counted(), chosen, synth.sample_rate):
                    sink.write(data)
            finally:
                if sink is not sys.stdout.buffer:
                    sink.close()
    except LeanspeechError as exc:
        fail(str(exc), 2)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}", 2)
    audio_s = samples / synth.sample_rate
    wall = time.perf_counter() - start
    typer.echo(
        f"{audio_s:.1f} s of audio in {wall:.2f} s ({audio_s / wall if wall else 0:.1f}x real time), "
        f"voice {synth.name} at {synth.resolution.precision} -> {output} ({chosen}; formats: {', '.join(FORMATS)})",
        err=True,
    )
