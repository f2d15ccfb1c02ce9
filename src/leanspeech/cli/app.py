"""The Typer app, shared error handling and the small commands."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

from leanspeech.errors import LeanspeechError

app = typer.Typer(
    name="leanspeech",
    help="Speech-to-text and text-to-speech in as little memory as they need, with measurements.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, no traceback, non-zero exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings():
    from leanspeech.config import Settings

    try:
        return Settings()
    except Exception as exc:  # pydantic ValidationError: name the bad variable
        first = str(exc).strip().splitlines()
        fail("invalid settings: " + " ".join(first[:3]), 2)


@app.command("config")
def config_cmd(markdown: bool = typer.Option(False, "--markdown",
                                             help="Print the settings table of docs/configuration.md.")):
    """Show the effective settings (secrets redacted), or the table of every setting."""
    import json

    from leanspeech.config import settings_markdown

    if markdown:
        typer.echo(settings_markdown())
        return
    typer.echo(json.dumps(settings().redacted(), indent=2))


def main() -> None:
    from leanspeech.cli import batch, bench, doctor, listen, models, plan, serve, speak, transcribe  # noqa: F401  (register commands)

    try:
        app()
    except LeanspeechError as exc:  # anything a command did not catch itself
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
