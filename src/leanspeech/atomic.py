"""Files that are whole or absent: written under a temporary name beside the target, then
renamed over it; a failed write leaves no temporary file behind. Every transcript, batch
output and job file the package writes goes through here."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[TextIO]:
    """A text file (UTF-8) to write ``path`` through, piece by piece: a reader sees the old
    file or the new one, never half of one. The pieces go to ``.NAME.*.partial`` beside it
    (where a long transcript can be followed as it grows), renamed into place when the block
    ends, removed if it raises."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            yield out
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` whole (``atomic_open``)."""
    with atomic_open(path) as out:
        out.write(text)
    return Path(path)
