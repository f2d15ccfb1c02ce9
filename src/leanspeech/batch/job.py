"""A batch job over many files: which files (a directory, a glob or a manifest), where each
result goes, which are already done (resume), and writing them so that a file is either
complete or absent.

``run_batch`` runs the job in this process through ``Transcriber.transcribe_many`` (windows
of several files decoded together). Each result is written next to its name as soon as it
is done: ``OUT/<path relative to the input>.<format>`` for every format asked for, each
through a temporary file and a rename, the ``json`` (or the last format) last. A rerun skips
every file whose outputs all exist. A file that cannot be read is listed with its error and
the job goes on; the list is also written to ``OUT/failed.json``.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from leanspeech.atomic import write_text_atomic
from leanspeech.errors import InvalidOptionError

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus", ".webm", ".aac", ".wma", ".mp4",
                            ".mkv", ".mov", ".aiff", ".aif"})
MANIFEST_SUFFIXES = frozenset({".txt", ".lst", ".list", ".manifest"})
FAILED = "failed.json"


@dataclass(frozen=True)
class Item:
    """One input and where its results go (``target`` without the format suffix)."""

    source: Path
    target: Path

    def output(self, fmt: str) -> Path:
        return self.target.with_name(f"{self.target.name}.{fmt}")


@dataclass
class Summary:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def collect(spec: str) -> tuple[list[Path], Path]:
    """The files of ``spec`` (a directory, searched recursively for audio; a manifest, one path a
    line, relative to the manifest, ``#`` comments; or a glob) and the folder their output
    names are relative to."""
    path = Path(spec).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        return files, path
    if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        files = [(path.parent / line).resolve() if not Path(line).is_absolute() else Path(line)
                 for line in lines if line and not line.startswith("#")]
        return files, _common_parent(files) if files else path.parent
    if path.is_file():
        return [path], path.parent
    files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
    if not files:
        raise InvalidOptionError(f"{spec}: no such directory or manifest, and the pattern matches no file", "input")
    return files, _common_parent(files)


def _common_parent(files: list[Path]) -> Path:
    return Path(os.path.commonpath([str(f.resolve().parent) for f in files]))


def plan_items(files: Iterable[Path], base: Path, out: Path) -> list[Item]:
    """Each file's target under ``out``: its path relative to ``base`` without the suffix (a
    file outside ``base`` keeps only its name). Two inputs with one target keep the suffix."""
    items: list[Item] = []
    seen: set[Path] = set()
    for f in files:
        try:
            rel = f.resolve().relative_to(base.resolve())
        except ValueError:
            rel = Path(f.name)
        target = out / rel.with_suffix("")
        if target in seen:  # a.wav and a.mp3 side by side
            target = out / rel
        seen.add(target)
        items.append(Item(f, target))
    return items


def is_done(item: Item, formats: tuple[str, ...]) -> bool:
    return all(item.output(fmt).is_file() for fmt in formats)


def order_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """The formats asked for, checked, with json last (its presence marks a file as done
    when the job is stopped mid-write: the others were renamed into place before it)."""
    from leanspeech.stt.formats import FORMATS

    wanted = tuple(dict.fromkeys(f.strip() for f in formats if f.strip()))
    bad = [f for f in wanted if f not in FORMATS]
    if bad or not wanted:
        raise InvalidOptionError(f"unknown format {bad[0] if bad else ''!r} (valid: {', '.join(FORMATS)})", "format")
    return tuple(sorted(wanted, key=lambda f: f == "json"))


def write(item: Item, result, formats: tuple[str, ...]) -> None:
    """Every format of one result, each complete or absent (a temporary name, then a rename)."""
    from leanspeech.stt.formats import write_transcript

    item.target.parent.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        write_transcript(item.output(fmt), result, fmt)


def not_done(items: list[Item], formats: tuple[str, ...], summary: Summary,
             on_done: Callable[[Item, str], None] | None = None) -> list[Item]:
    """The items still to do; the others are counted as skipped (and told to ``on_done``)."""
    todo = []
    for item in items:
        if is_done(item, formats):
            summary.skipped.append(item.source)
            if on_done:
                on_done(item, "skipped")
        else:
            todo.append(item)
    return todo


def run_batch(transcriber, items: list[Item], formats: tuple[str, ...], *,
              on_done: Callable[[Item, str], None] | None = None) -> Summary:
    """Transcribe every item not done yet, in this process, writing each as it completes.
    ``on_done(item, status)``: "written", "skipped" or "failed", for a progress bar."""
    summary = Summary()
    todo = not_done(items, formats, summary, on_done)
    for item, status, error in transcribe_items(transcriber, todo, formats):
        if status == "failed":
            summary.failed.append((item.source, error))
        else:
            summary.written.append(item.source)
        if on_done:
            on_done(item, status)
    return summary


def transcribe_items(transcriber, todo: list[Item], formats: tuple[str, ...]) -> Iterator[tuple[Item, str, str]]:
    """Transcribe ``todo`` (the windows of several files decoded together) and write each
    result as it completes: ``(item, "written", "")`` or ``(item, "failed", why)``. The one
    loop of the in-process job and of each Ray worker."""
    for index, outcome in transcriber.transcribe_many([str(i.source) for i in todo]):
        item = todo[index]
        if isinstance(outcome, Exception):
            yield item, "failed", str(outcome)
            continue
        try:
            write(item, outcome, formats)
        except OSError as exc:
            yield item, "failed", f"cannot write {item.target}: {exc.strerror or exc}"
            continue
        yield item, "written", ""


def write_failures(out: Path, failed: list[tuple[Path, str]]) -> Path:
    """``OUT/failed.json``: the files that failed in the last run, with their errors."""
    out.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(out / FAILED, json.dumps([{"path": str(p), "error": e} for p, e in failed], indent=2)
                             + "\n")
