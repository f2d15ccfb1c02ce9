"""Find the compute devices and what each can do.

CUDA GPUs come from CTranslate2 (``get_cuda_device_count`` / ``get_supported_compute_types``),
with the name, compute capability and memory from NVML when the NVIDIA driver library is
present. The CPU comes from ``/proc/cpuinfo`` (model, ISA flags) and CTranslate2.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceInfo:
    """One device. ``kind`` is ``"cpu"`` or ``"cuda"``."""

    kind: str
    index: int = 0
    name: str = ""
    compute_capability: tuple[int, int] | None = None
    #: What CTranslate2 reports it can run here; ``None`` when it could not be asked
    #: (then the rules table in ``precision.py`` decides alone).
    ct2_compute_types: frozenset[str] | None = None
    memory_total: int | None = None
    cores: int | None = None
    isa: tuple[str, ...] = field(default_factory=tuple)

    @property
    def id(self) -> str:
        return "cpu" if self.kind == "cpu" else f"cuda:{self.index}"

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "index": self.index,
            "name": self.name,
            "compute_capability": (
                ".".join(map(str, self.compute_capability)) if self.compute_capability else None
            ),
            "ct2_compute_types": sorted(self.ct2_compute_types or ()),
            "memory_total": self.memory_total,
            "cores": self.cores,
            "isa": list(self.isa),
        }


_ISA_FLAGS = (
    "avx",
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_int8",
    "amx_bf16",
    "neon",
    "asimd",
)


def _cpu_info() -> tuple[str, tuple[str, ...]]:
    name, flags = platform.processor() or platform.machine(), set[str]()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and name in ("", platform.machine(), platform.processor()):
                    name = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return name, tuple(f for f in _ISA_FLAGS if f in flags)


def cpu_device() -> DeviceInfo:
    name, isa = _cpu_info()
    try:
        import ctranslate2

        types = frozenset(ctranslate2.get_supported_compute_types("cpu"))
    except Exception:  # pragma: no cover - ctranslate2 is a hard dependency
        types = None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        import psutil

        mem = psutil.virtual_memory().total
    except Exception:  # pragma: no cover
        mem = None
    return DeviceInfo(kind="cpu", name=name, ct2_compute_types=types, memory_total=mem, cores=cores, isa=isa)


def cuda_device_count() -> int:
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception as exc:
        logger.debug("CTranslate2 sees no CUDA device: %s", exc)
        return 0


def _nvml_details(index: int) -> tuple[str, tuple[int, int] | None, int | None]:
    from leanspeech import memory

    handle = memory.nvml_handle(index)
    if handle is None:
        return f"cuda:{index}", None, None
    import pynvml

    name = pynvml.nvmlDeviceGetName(handle)
    name = name.decode() if isinstance(name, bytes) else name
    cc = tuple(pynvml.nvmlDeviceGetCudaComputeCapability(handle))
    total = int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)
    return name, (int(cc[0]), int(cc[1])), total


def cuda_devices() -> list[DeviceInfo]:
    import ctranslate2

    devices = []
    for index in range(cuda_device_count()):
        try:
            types = frozenset(ctranslate2.get_supported_compute_types("cuda", index))
        except Exception as exc:  # driver too old for the runtime, etc.
            logger.warning("cuda:%d is present but CTranslate2 cannot use it: %s", index, exc)
            continue
        name, cc, total = _nvml_details(index)
        devices.append(
            DeviceInfo(
                kind="cuda", index=index, name=name, compute_capability=cc, ct2_compute_types=types, memory_total=total
            )
        )
    return devices


@functools.lru_cache(maxsize=1)
def list_devices() -> tuple[DeviceInfo, ...]:
    """Every usable device, CUDA GPUs first, then the CPU. Cached for the process."""
    return (*cuda_devices(), cpu_device())


def parse_device(spec: str) -> tuple[str, int]:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` -> (kind, index)."""
    from leanspeech.errors import UnknownDeviceError

    value = (spec or "auto").strip().lower()
    if value in ("auto", "cpu"):
        return value, 0
    kind, _, idx = value.partition(":")
    if kind in ("cuda", "gpu") and (idx == "" or idx.isdigit()):
        return "cuda", int(idx or 0)
    raise UnknownDeviceError(f"unknown device {spec!r} (valid: auto, cpu, cuda, cuda:N)")


def find_device(spec: str, devices: tuple[DeviceInfo, ...] | None = None) -> DeviceInfo:
    """The device ``spec`` names (``cpu``, ``cuda``, ``cuda:N``; ``auto`` = the first GPU, else
    the CPU), or ``UnknownDeviceError`` that lists the devices this machine has."""
    from leanspeech.errors import UnknownDeviceError

    kind, index = parse_device(spec)
    devs = devices if devices is not None else list_devices()
    if kind == "auto":
        return devs[0]
    for dev in devs:
        if dev.kind == kind and (kind == "cpu" or dev.index == index):
            return dev
    raise UnknownDeviceError(f"device {spec!r} is not available (devices: {', '.join(d.id for d in devs)})")
