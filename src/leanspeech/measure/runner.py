"""``leanspeech bench``: every model x precision x batch x beam on the same audio, each in a
fresh process, with anchors (plain faster-whisper) measured in the same run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from leanspeech.errors import InvalidOptionError, LeanspeechError
from leanspeech.measure import scoring

PRECISION_ORDER = (
    "float32",
    "autocast",
    "bfloat16",
    "float16",
    "int16",
    "int8_float32",
    "int8_bfloat16",
    "int8_float16",
    "int8",
    "int8-dynamic",
)


@dataclass(frozen=True)
class BenchConfig:
    engine: str  # leanspeech | leanspeech-torch | faster-whisper | faster-whisper-batched | openai-whisper
    model: str
    precision: str
    batch: int
    beam: int
    device: str = "cpu"
    threads: int = 0

    @property
    def label(self) -> str:
        name = {
            "leanspeech": "leanspeech",
            "leanspeech-torch": "leanspeech torch",
            "faster-whisper": "faster-whisper",
            "faster-whisper-batched": "faster-whisper batched",
            "openai-whisper": "openai-whisper",
        }[self.engine]
        return f"{name} {self.model} {self.precision} batch {self.batch} beam {self.beam}"

    @property
    def is_anchor(self) -> bool:
        return not self.engine.startswith("leanspeech")


@dataclass
class Inputs:
    files: list[Path]
    refs: dict[str, str] = field(default_factory=dict)  # file path -> reference text
    notes: list[str] = field(default_factory=list)
    languages: dict[str, str] = field(default_factory=dict)  # file path -> language (default en)


def _audio_files(spec: str) -> list[Path]:
    exts = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".webm", ".mp4", ".mkv"}
    out: list[Path] = []
    for part in [p for p in spec.split(",") if p]:
        path = Path(part).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in exts)
            if not found:
                raise InvalidOptionError(f"{path}: no audio files in this directory", "audio")
            out += found
        elif path.is_file():
            if path.stat().st_size == 0:
                raise InvalidOptionError(f"{path}: the file is empty", "audio")
            if not os.access(path, os.R_OK):
                raise InvalidOptionError(f"{path}: not readable", "audio")
            out.append(path)
        else:
            raise InvalidOptionError(f"{path}: no such file or directory", "audio")
    return out


def load_refs(files: list[Path], refs: str | None) -> dict[str, str]:
    """References from ``refs`` (a directory of NAME.txt or a TSV of file<TAB>text), else
    from a .txt next to each audio file. References that match no audio file are an error."""
    out: dict[str, str] = {}
    by_name = {f.name: f for f in files}
    by_stem = {f.stem: f for f in files}
    if refs:
        path = Path(refs).expanduser()
        if path.is_dir():
            for txt in sorted(path.glob("*.txt")):
                if txt.stem not in by_stem:
                    raise InvalidOptionError(
                        f"reference {txt} matches no audio file (audio: {', '.join(sorted(by_stem))})", "refs"
                    )
                out[str(by_stem[txt.stem])] = txt.read_text(encoding="utf-8").strip()
        elif path.is_file():
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                if "\t" not in line:
                    raise InvalidOptionError(f"{path}:{n}: expected file<TAB>text", "refs")
                name, text = line.split("\t", 1)
                target = by_name.get(Path(name).name) or by_stem.get(Path(name).stem)
                if target is None:
                    raise InvalidOptionError(f"{path}:{n}: {name!r} matches no audio file", "refs")
                out[str(target)] = text.strip()
        else:
            raise InvalidOptionError(f"{path}: no such references file or directory", "refs")
    else:
        for f in files:
            txt = f.with_suffix(".txt")
            if txt.is_file():
                out[str(f)] = txt.read_text(encoding="utf-8").strip()
    return out


def suite(name: str, jfk: Path | None) -> Inputs:
    """``quick``: jfk.flac (when found) and a clip of Piper sentences; ``long``: 5 minutes of
    Piper speech with pauses. Generated deterministically and cached."""
    from leanspeech.measure import corpus

    if name == "quick":
        inputs = Inputs([])
        if jfk is not None and jfk.is_file():
            inputs.files.append(jfk)
            inputs.refs[str(jfk)] = (
                "And so my fellow Americans, ask not what your country can do for you, "
                "ask what you can do for your country."
            )
        else:
            inputs.notes.append("jfk.flac not found (set LEANSPEECH_JFK): quick suite without it")
        path, text = corpus.sentences_clip(count=5, start=3, pause=0.6)
        inputs.files.append(path)
        inputs.refs[str(path)] = text
        return inputs
    if name == "long":
        path, text = corpus.long_form(5.0)
        return Inputs([path], {str(path): text})
    if name == "multilingual":
        return _multilingual(jfk)
    raise InvalidOptionError(f"unknown suite {name!r} (valid: quick, long, multilingual)", "suite")


def _multilingual(jfk: Path | None) -> Inputs:
    """jfk.flac, Piper English, and espeak-ng German, Spanish and French: six sentences each."""
    from leanspeech.measure.corpus_languages import language_clip

    inputs = Inputs([])
    if jfk is not None and jfk.is_file():
        inputs.files.append(jfk)
        inputs.refs[str(jfk)] = ("And so my fellow Americans, ask not what your country can do for you, "
                                 "ask what you can do for your country.")
    for language in ("en", "de", "es", "fr"):
        path, text = language_clip(language, count=6, start=10 if language == "en" else 0)
        inputs.files.append(path)
        inputs.refs[str(path)] = text
        inputs.languages[str(path)] = language
    if jfk is not None:
        inputs.languages[str(jfk)] = "en"
    return inputs


def find_jfk() -> Path | None:
    env = os.environ.get("LEANSPEECH_JFK")
    if env:
        return Path(env)
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = base.parent / "shared" / "data" / "jfk.flac"
        if candidate.is_file():
            return candidate
    return None


def expand(
    models,
    precisions,
    batches,
    beams,
    device,
    threads,
    anchors: list[str],
    backends: tuple[str, ...] = ("ctranslate2",),
    torch_precisions: tuple[str, ...] = (),
) -> list[BenchConfig]:
    configs = (
        [
            BenchConfig("leanspeech", m, p, b, k, device, threads)
            for m in models
            for p in precisions
            for b in batches
            for k in beams
        ]
        if "ctranslate2" in backends
        else []
    )
    if "torch" in backends:
        configs += [
            BenchConfig("leanspeech-torch", m, p, b, k, device, threads)
            for m in models
            for p in torch_precisions
            for b in batches
            for k in beams
        ]
    if "openai-whisper" in anchors:  # its own pipeline, on the exported checkpoint; fp16 on CUDA as it defaults
        configs += [
            BenchConfig(
                "openai-whisper", m, "float16" if device.startswith("cuda") else "float32", 0, k, device, threads
            )
            for m in models
            for k in beams
        ]
    if "faster-whisper" in anchors:
        for m in models:
            for p in (p for p in precisions if p != "auto"):
                for k in beams:
                    configs.append(BenchConfig("faster-whisper", m, p, 0, k, device, threads))
                    configs += [
                        BenchConfig("faster-whisper-batched", m, p, b, k, device, threads) for b in batches if b > 0
                    ]
    return configs


def run_one(
    config: BenchConfig,
    files: list[Path],
    repeat: int,
    timeout: float = 3600,
    on_file: Callable[[int, int, float], None] | None = None,
) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "leanspeech.measure.bench_child",
        json.dumps(asdict(config)),
        json.dumps([str(f) for f in files]),
        str(repeat),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    err_lines: list[str] = []

    def read_stderr() -> None:  # progress lines as they come, the rest kept for the error
        assert proc.stderr is not None and proc.stdout is not None
        for line in proc.stderr:
            if line.startswith("leanspeech-progress ") and on_file is not None:
                _, done, total, seconds = line.split()
                on_file(int(done), int(total), float(seconds))
            else:
                err_lines.append(line)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        out = proc.stdout.read()  # type: ignore[union-attr]
        proc.wait(timeout=timeout)
        reader.join(5)
        err = "".join(err_lines)
    except BaseException:  # Ctrl-C or timeout: no child outlives the run
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        raise
    if proc.returncode != 0:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit code {proc.returncode}"
        if proc.returncode < 0:
            reason = f"killed by signal {-proc.returncode} (out of memory?)"
        return {"ok": False, "error": reason[:400]}
    return {"ok": True, **json.loads(out.strip().splitlines()[-1])}


def score(rows: list[dict], inputs: Inputs) -> None:
    """Fill WER/CER, the difference against the highest-precision configuration of the same
    model (same engine, batch and beam), word agreement with it, and ratios to the anchor."""
    for row in rows:
        if not row["ok"]:
            continue
        audio = sum(f["audio_s"] for f in row["files"])
        wall = sum(f["wall_s"] for f in row["files"])
        row["audio_s"], row["wall_s"] = audio, wall
        row["rtf"] = wall / audio if audio else None
        by_language: dict[str, list[tuple[str, str]]] = {}
        for f in row["files"]:
            if f["file"] in inputs.refs:
                language = inputs.languages.get(f["file"], "en")
                by_language.setdefault(language, []).append((inputs.refs[f["file"]], f["text"]))
        pairs = [p for lang_pairs in by_language.values() for p in lang_pairs]
        row["wer"], row["cer"] = scoring.corpus_scores(pairs) if pairs else (None, None)
        if inputs.languages:
            row["wer_by_language"] = {lang: scoring.corpus_scores(p, lang)[0] for lang, p in by_language.items()}
    ok = [r for r in rows if r["ok"]]
    for row in ok:
        peers = [
            r
            for r in ok
            if r["engine"] == row["engine"]
            and r["model"] == row["model"]
            and r["batch"] == row["batch"]
            and r["beam"] == row["beam"]
        ]
        top = min(
            peers,
            key=lambda r: (
                PRECISION_ORDER.index(r["effective_precision"]) if r["effective_precision"] in PRECISION_ORDER else 99
            ),
        )
        row["reference_config"] = top["label"]
        texts = list(zip([f["text"] for f in top["files"]], [f["text"] for f in row["files"]], strict=False))
        row["agreement"] = sum(scoring.agreement(a, b) for a, b in texts) / len(texts) if texts else None
        row["wer_diff_points"] = (
            ((row["wer"] - top["wer"]) * 100) if row["wer"] is not None and top["wer"] is not None else None
        )
        anchor = next(
            (
                r
                for r in ok
                if r["engine"] == "faster-whisper"
                and r["model"] == row["model"]
                and r["precision"] == (row["effective_precision"] if row["precision"] == "auto" else row["precision"])
                and r["beam"] == row["beam"]
            ),
            None,
        )
        if anchor is not None and anchor is not row:
            row["anchor"] = anchor["label"]
            row["speed_vs_anchor"] = anchor["wall_s"] / row["wall_s"]
            row["peak_rss_vs_anchor"] = row["peak_rss"] / anchor["peak_rss"]
            if row["wer"] is not None and anchor["wer"] is not None:
                row["wer_vs_anchor_points"] = (row["wer"] - anchor["wer"]) * 100


def run(
    configs: list[BenchConfig],
    inputs: Inputs,
    repeat: int,
    progress: Callable[[BenchConfig, dict], None] | None = None,
    on_file: Callable[[int, int, float], None] | None = None,
) -> tuple[list[dict], bool]:
    """Returns (rows, interrupted). Ctrl-C stops the current child and keeps what finished."""
    rows: list[dict] = []
    interrupted = False
    for config in configs:
        try:
            result = run_one(config, inputs.files, repeat, on_file=on_file)
        except KeyboardInterrupt:
            interrupted = True
            break
        row = {**asdict(config), "label": config.label, "anchor_row": config.is_anchor, **result}
        rows.append(row)
        if progress is not None:
            progress(config, row)
    score(rows, inputs)
    return rows, interrupted


def openai_whisper_note() -> str | None:
    """Why the openai-whisper anchor cannot run here, or None when it can."""
    try:
        import torch  # noqa: F401
        import whisper  # noqa: F401
    except ImportError as exc:
        return (
            f"openai-whisper anchor not run: {exc.name} is not installed "
            "(pip install 'leanspeech[openai-whisper]'); no row is faked"
        )
    return None


def check_models(models: list[str]) -> None:
    from leanspeech.models.store import resolve_model

    for m in models:
        try:
            resolve_model(m, offline=True)
        except LeanspeechError as exc:
            raise InvalidOptionError(str(exc), "models") from None
