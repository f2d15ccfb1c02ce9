"""The machine a benchmark ran on and the command that ran it, stored with its results."""

from __future__ import annotations

import platform
import shlex
import sys
from importlib.metadata import PackageNotFoundError, version


def command() -> str:
    """The command line that is running this benchmark, quoted so that it runs again as printed
    (a ``--lengths`` value holds a space), from the repository root: every benchmark is a
    script in ``benchmarks/``."""
    from pathlib import Path

    return shlex.join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])


def describe() -> dict:
    from leanspeech.devices import list_devices
    from leanspeech.memory import gpu_memory, nvml_available

    cpu = next(d for d in list_devices() if d.kind == "cpu")
    versions = {}
    for pkg in (
        "leanspeech",
        "ctranslate2",
        "faster-whisper",
        "onnxruntime",
        "piper-tts",
        "numpy",
        "torch",
        "transformers",
        "openai-whisper",
    ):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    driver = None
    if nvml_available():
        import pynvml

        driver = pynvml.nvmlSystemGetDriverVersion()
    return {
        "cpu": cpu.name,
        "cores": cpu.cores,
        "isa": list(cpu.isa),
        "ram": cpu.memory_total,
        "os": platform.platform(),
        "python": platform.python_version(),
        "gpus": [{"name": g.name, "total": g.total} for g in gpu_memory()],
        "gpu_driver": driver,
        "versions": versions,
    }
