"""Memory readings: process RSS now and peak, system memory, GPU memory through NVML,
and helpers to parse and print byte sizes. Nothing here allocates much or needs a GPU."""

from __future__ import annotations

import gc
import logging
import os
import re
import resource
import sys
import threading
import time
from dataclasses import dataclass

import psutil

logger = logging.getLogger(__name__)

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
    "ti": 1024**4,
    "tib": 1024**4,
}


def parse_bytes(value: str | int | float | None) -> int | None:
    """``"4GiB"``, ``"512MB"``, ``"1.5G"``, ``1234`` -> bytes. ``None``/``""``/``"0"`` -> None (no limit)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value) if value > 0 else None
    text = value.strip().replace("_", "")
    if text.lower() in ("", "0", "none", "off", "unlimited"):
        return None
    match = re.fullmatch(r"(?i)\s*([0-9]*\.?[0-9]+)\s*([a-z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"not a byte size: {value!r} (examples: 4GiB, 512MB, 1073741824)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_bytes(n: int | float | None) -> str:
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def rss() -> int:
    """Resident set size of this process, in bytes."""
    return int(psutil.Process().memory_info().rss)


def peak_rss_lifetime() -> int:
    """The highest RSS this process has had since it started: Linux's ``VmHWM``, else
    ``ru_maxrss``.

    Not ``ru_maxrss`` on Linux: the kernel carries a process's high-water mark over its
    ``exec`` (``exec_mmap`` keeps the larger of the two), and Python starts a subprocess
    with ``vfork`` + ``exec``, so a child's ``ru_maxrss`` is at least its parent's peak so
    far. A benchmark that made a 2-hour file in memory and then measured a transcription in
    a fresh child read the parent's 1.5 GiB as the child's peak. ``VmHWM`` is the peak of
    the process's own memory map, new at ``exec``."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def system_memory() -> dict:
    vm = psutil.virtual_memory()
    return {"total": int(vm.total), "available": int(vm.available), "used": int(vm.total - vm.available)}


class PeakSampler:
    """Samples RSS in a background thread while a block runs; ``peak`` is the highest seen.

    ``with PeakSampler() as s: work(); s.peak``. The kernel's lifetime peak cannot be reset
    (without privileges), so this is how a peak *of one piece of work* is read in-process.
    """

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.start = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc = psutil.Process()

    def _read(self) -> int:
        """The value whose peak is sampled (RSS here; subclasses read something else)."""
        return int(self._proc.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                value = self._read()
            except psutil.Error:  # pragma: no cover
                break
            if value > self.peak:
                self.peak = value
            self._stop.wait(self.interval)

    def __enter__(self):
        self.start = self.peak = self._read()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"leanspeech-{type(self).__name__}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self._read())

    @property
    def delta(self) -> int:
        return self.peak - self.start


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``).

    Without the trim, memory freed by an unloaded model often stays in the process's
    heap and RSS does not drop, which is the 'unload did nothing' complaint.
    """
    from leanspeech.tuning.malloc import trim_heap

    gc.collect()
    trim_heap()


# ---- GPU (NVML) ---------------------------------------------------------------------

_NVML_LOCK = threading.Lock()
_NVML_STATE: dict = {"ok": None}


def _nvml():
    """The pynvml module, initialised once; None where NVML is absent (no driver, no GPU)."""
    with _NVML_LOCK:
        if _NVML_STATE["ok"] is None:
            try:
                import pynvml

                pynvml.nvmlInit()
                _NVML_STATE["ok"] = pynvml
            except Exception as exc:
                logger.debug("NVML unavailable: %s", exc)
                _NVML_STATE["ok"] = False
        return _NVML_STATE["ok"] or None


def nvml_handle(index: int):
    nvml = _nvml()
    if nvml is None:
        return None
    try:
        return nvml.nvmlDeviceGetHandleByIndex(index)
    except Exception:
        return None


def nvml_available() -> bool:
    return _nvml() is not None


@dataclass(frozen=True)
class GpuMemory:
    index: int
    name: str
    used: int
    total: int
    process_used: int | None  # this process's bytes on that GPU, when NVML can say

    def as_dict(self) -> dict:
        return {
            "index": self.index,
            "name": self.name,
            "used": self.used,
            "total": self.total,
            "free": self.total - self.used,
            "process_used": self.process_used,
        }


def gpu_memory(pid: int | None = None) -> list[GpuMemory]:
    """Used and total memory per GPU from NVML, and ``pid``'s share (default: this process)."""
    nvml = _nvml()
    if nvml is None:
        return []
    pid = os.getpid() if pid is None else pid
    out = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        info = nvml.nvmlDeviceGetMemoryInfo(handle)
        name = nvml.nvmlDeviceGetName(handle)
        name = name.decode() if isinstance(name, bytes) else name
        mine = None
        try:
            procs = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
            mine = sum(int(p.usedGpuMemory or 0) for p in procs if p.pid == pid)
        except Exception:
            pass
        out.append(GpuMemory(index, name, int(info.used), int(info.total), mine))
    return out


class GpuPeakSampler(PeakSampler):
    """Like PeakSampler, for this process's memory on one GPU through NVML (0 without NVML)."""

    def __init__(self, index: int = 0, interval: float = 0.01):
        super().__init__(interval)
        self.index = index

    def _read(self) -> int:
        for gpu in gpu_memory():
            if gpu.index == self.index:
                return gpu.process_used if gpu.process_used is not None else gpu.used
        return 0


def torch_memory() -> dict | None:
    """torch's own CUDA allocator figures per device, when torch is already imported (the
    fields that users of torch-based TTS servers know); None when torch is not loaded."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    out = {"version": torch.__version__, "cuda_available": bool(torch.cuda.is_available()), "devices": []}
    if out["cuda_available"]:
        for i in range(torch.cuda.device_count()):
            out["devices"].append(
                {
                    "device": f"cuda:{i}",
                    "memory_allocated": int(torch.cuda.memory_allocated(i)),
                    "memory_reserved": int(torch.cuda.memory_reserved(i)),
                    "max_memory_allocated": int(torch.cuda.max_memory_allocated(i)),
                }
            )
    return out


def snapshot() -> dict:
    """One reading of everything: process, system, GPUs (NVML) and, when torch is loaded,
    torch's own CUDA allocator figures."""
    return {
        "time": time.time(),
        "process": {"rss": rss(), "peak_rss": peak_rss_lifetime()},
        "system": system_memory(),
        "gpus": [g.as_dict() for g in gpu_memory()],
        "torch": torch_memory(),
    }
