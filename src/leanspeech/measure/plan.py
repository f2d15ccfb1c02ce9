"""``leanspeech plan``: what fits on this machine, measured.

For each model x precision x batch size the device supports, a fresh child process
(``python -m leanspeech.measure.plan_child``) loads the model, then times the encode and the
decode of ``batch`` 30-second windows, greedy and with beam 5, with the decode forced to
``TOKENS`` tokens (so that real and synthetic models do the same work). It reports the load
time, the peak RSS (or the peak GPU memory of the process, from NVML) and the real-time
factors. The real model is used where it is on disk, the synthetic one otherwise, and the row
says which. Next to each measurement is the analytic estimate (``models.sizing``) and its
error. Measurements are cached per machine and leanspeech version, so a second run is instant.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

TOKENS = 64
PRECISION_RANK = {"float32": 6, "float16": 5, "bfloat16": 5, "int8_float32": 3, "int8_float16": 3,
                  "int8_bfloat16": 3, "int8": 2, "int16": 4}


@dataclass(frozen=True)
class Config:
    model: str
    precision: str
    batch: int
    device: str = "cpu"
    threads: int = 0

    @property
    def key(self) -> str:
        return f"{self.model}|{self.precision}|{self.batch}|{self.device}|{self.threads}"


def machine_key() -> str:
    from leanspeech import __version__
    from leanspeech.devices import list_devices

    devs = [f"{d.id}:{d.name}:{d.memory_total}" for d in list_devices()]
    return hashlib.sha256(json.dumps([platform.node(), devs, __version__, TOKENS]).encode()).hexdigest()[:16]


class Cache:
    def __init__(self, path: Path):
        self.path = path
        try:
            self.data = json.loads(path.read_text())
        except (OSError, ValueError):
            self.data = {}
        self.machine = machine_key()

    def get(self, config: Config) -> dict | None:
        return self.data.get(self.machine, {}).get(config.key)

    def put(self, config: Config, row: dict) -> None:
        self.data.setdefault(self.machine, {})[config.key] = row
        self.path.parent.mkdir(parents=True, exist_ok=True)
        from leanspeech.atomic import write_text_atomic

        write_text_atomic(self.path, json.dumps(self.data, indent=1))


def estimate(config: Config, model_path: Path | None) -> int:
    """Analytic bytes: weights at the precision + one window's encoder peak + the batch's
    decode state (encoder outputs, cross-attention keys/values, beam-5 self-attention cache)."""
    from leanspeech.models.catalog import CATALOG
    from leanspeech.models.sizing import estimate_bytes

    return estimate_bytes(CATALOG[config.model].arch, config.precision, beam_size=5, batch=config.batch,
                          model_path=model_path)


def measure(config: Config, model_dir: Path, timeout: float = 1800) -> dict:
    """Run one configuration in a fresh process and return its row (or a failed row)."""
    cmd = [sys.executable, "-m", "leanspeech.measure.plan_child", json.dumps(asdict(config)), str(model_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:  # Ctrl-C or timeout: leave no stray process behind
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    if proc.returncode != 0:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit code {proc.returncode}"
        if proc.returncode < 0:
            reason = f"killed by signal {-proc.returncode} (out of memory?)"
        return {**asdict(config), "ok": False, "error": reason[:300]}
    return {**asdict(config), "ok": True, **json.loads(out.strip().splitlines()[-1])}


def run(configs: list[Config], model_dir: Path, cache: Cache, progress: Callable[[Config, dict], None] | None = None,
        refresh: bool = False) -> list[dict]:
    from leanspeech.measure.plan_child import speech_window
    from leanspeech.models.catalog import CATALOG
    from leanspeech.models.store import local_sources
    from leanspeech.models.synth import build_synthetic

    # Everything a child needs is made here first, so that no child's baseline or peak
    # includes making it: the speech window (Piper) and the synthetic models (which take
    # their whole float32 weights in memory while being built).
    speech_window()
    for name in dict.fromkeys(c.model for c in configs):
        if not local_sources(CATALOG[name], model_dir):
            build_synthetic(name, model_dir)
    rows = []
    for config in configs:
        row = None if refresh else cache.get(config)
        if row is None:
            row = measure(config, model_dir)
            if row["ok"]:
                cache.put(config, row)
        else:
            row = {**row, "cached": True}
        rows.append(row)
        if progress is not None:
            progress(config, row)
    return rows


def recommend(rows: list[dict], budget: int | None) -> dict:
    """The most accurate model and precision whose batch-1 peak fits, and the largest batch
    that fits with it. With no fit: say so, and name the smallest configuration."""
    from leanspeech.models.catalog import CATALOG

    ok = [r for r in rows if r["ok"]]
    if not ok:
        return {"fits": False, "reason": "no configuration could be measured"}
    fitting = [r for r in ok if budget is None or r["peak_bytes"] <= budget]
    if not fitting:
        smallest = min(ok, key=lambda r: r["peak_bytes"])
        return {"fits": False, "reason": "nothing measured fits the budget", "smallest": smallest}

    def rank(r: dict) -> tuple:
        return CATALOG[r["model"]].quality, PRECISION_RANK.get(r["precision"], 0), -r["peak_bytes"]

    best = max(fitting, key=rank)
    largest = max((r for r in fitting if r["model"] == best["model"] and r["precision"] == best["precision"]),
                  key=lambda r: r["batch"])
    return {
        "fits": True,
        "model": best["model"],
        "precision": best["precision"],
        "batch": largest["batch"],
        "peak_bytes": largest["peak_bytes"],  # at that batch, the most this choice takes
        "synthetic": best["synthetic"],
    }


def chart(rows: list[dict], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6), dpi=110)
    for r in (r for r in rows if r["ok"]):
        marker = "o" if r["batch"] == 1 else "s"
        ax.scatter(
            r["peak_bytes"] / 2**20,
            1 / r["rtf_beam5"],
            marker=marker,
            s=50,
            facecolors="none" if r["synthetic"] else None,
            edgecolors="C0" if r["synthetic"] else None,
        )
        ax.annotate(
            f"{r['model']} {r['precision']} b{r['batch']}",
            (r["peak_bytes"] / 2**20, 1 / r["rtf_beam5"]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("peak memory (MiB, log)")
    ax.set_ylabel("speed: x real time, beam 5 (log)")
    ax.set_title(title + "\n(circles batch 1, squares batch > 1; hollow = synthetic weights)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
