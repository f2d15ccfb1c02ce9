"""Resolve a requested (device, precision) to what will really run, with a reason.

The rules follow CTranslate2's documented support (docs, "Models and precision"):

============================  ==========================================  ==============================
precision                     CUDA needs                                  CPU
============================  ==========================================  ==============================
int8, int8_float32            compute capability 6.1 or >= 7.0            yes
int8_float16, float16         >= 7.0                                      no: int8_float32 / float32
int8_bfloat16, bfloat16       >= 8.0                                      no: int8_float32 / float32
int16                         no                                          Intel MKL builds only
float32                       always                                      always
============================  ==========================================  ==============================

``auto`` is memory-lean: int8_float16 on CUDA (>= 7.0), int8 on CPU.

A precision that *resolves* fine can still fail when the model loads or first runs (some
GPUs reject int8 GEMMs with CUBLAS_STATUS_NOT_SUPPORTED). ``load_with_fallback`` walks the
runtime chain below, logs each failure and records the precision that worked; in strict
mode every substitution and every fallback is an error instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from leanspeech.devices import DeviceInfo, list_devices, parse_device
from leanspeech.errors import PrecisionUnsupportedError, UnknownDeviceError, UnknownPrecisionError

logger = logging.getLogger(__name__)

COMPUTE_TYPES = (
    "float32",
    "float16",
    "bfloat16",
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
)
PRECISIONS = ("auto", *COMPUTE_TYPES)

# When the device cannot run a precision at all: what to use instead, in order.
_SUBSTITUTES: dict[str, tuple[str, ...]] = {
    "float32": (),
    "float16": ("float32",),
    "bfloat16": ("float16", "float32"),
    "int8": ("float32",),
    "int8_float32": ("float32",),
    "int8_float16": ("int8_float32", "float16", "float32"),
    "int8_bfloat16": ("int8_float16", "int8_float32", "bfloat16", "float16", "float32"),
    "int16": ("int8", "float32"),
}

# When a precision resolved but its load or first inference failed: leave the failing
# kernel family (int8 GEMMs first), then widen.
_RUNTIME_FALLBACK: dict[str, tuple[str, ...]] = {
    "float32": (),
    "float16": ("float32",),
    "bfloat16": ("float16", "float32"),
    "int8": ("float16", "float32"),
    "int8_float32": ("float32",),
    "int8_float16": ("float16", "float32"),
    "int8_bfloat16": ("bfloat16", "float16", "float32"),
    "int16": ("int8", "float32"),
}

_WHY_NOT_CPU = {
    "float16": "CTranslate2 has no float16 kernels on CPU",
    "bfloat16": "CTranslate2 has no bfloat16 kernels on CPU",
    "int8_float16": "CTranslate2 has no float16 kernels on CPU",
    "int8_bfloat16": "CTranslate2 has no bfloat16 kernels on CPU",
    "int16": "int16 needs a CTranslate2 build with Intel MKL",
}


def _cuda_rule(precision: str, cc: tuple[int, int] | None) -> tuple[bool, str]:
    """(supported, why) for one precision on a GPU of compute capability ``cc``."""
    if precision == "float32":
        return True, "float32 runs on every GPU"
    if precision == "int16":
        return False, "int16 is CPU-only in CTranslate2"
    if cc is None:
        return True, "compute capability unknown; trusting CTranslate2"
    ccs = f"{cc[0]}.{cc[1]}"
    if precision in ("int8", "int8_float32"):
        ok = cc == (6, 1) or cc >= (7, 0)
        return ok, f"int8 GEMMs need compute capability 6.1 or >= 7.0 (this GPU: {ccs})"
    if precision in ("float16", "int8_float16"):
        return cc >= (7, 0), f"float16 needs compute capability >= 7.0 (this GPU: {ccs})"
    if precision in ("bfloat16", "int8_bfloat16"):
        return cc >= (8, 0), f"bfloat16 needs compute capability >= 8.0 (this GPU: {ccs})"
    raise UnknownPrecisionError(precision, PRECISIONS)


def supported_precisions(device: DeviceInfo) -> tuple[str, ...]:
    """Every compute type that ``device`` can run, by the rules and by CTranslate2's report."""
    out = []
    for precision in COMPUTE_TYPES:
        ok, _ = _supports(device, precision)
        if ok:
            out.append(precision)
    return tuple(out)


def _supports(device: DeviceInfo, precision: str) -> tuple[bool, str]:
    reported = device.ct2_compute_types
    if device.kind == "cpu":
        if precision in ("float32", "int8", "int8_float32"):
            return True, f"{precision} runs on CPU"
        if precision == "int16" and reported is not None and "int16" in reported:
            return True, "int16 runs on this CPU (MKL build)"
        return False, _WHY_NOT_CPU.get(precision, f"{precision} is not supported on CPU")
    ok, why = _cuda_rule(precision, device.compute_capability)
    if ok and reported is not None and precision not in reported:
        return False, f"CTranslate2 reports {precision} unsupported on {device.id}"
    return ok, why


@dataclass(frozen=True)
class Resolution:
    """The effective device and compute type for a request, and why."""

    requested_device: str
    requested_precision: str
    device: str  # "cpu" | "cuda"
    device_index: int
    compute_type: str
    reason: str
    fallback: bool = False
    #: (precision, error) for each precision that failed at load or first inference.
    failures: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def device_id(self) -> str:
        return "cpu" if self.device == "cpu" else f"{self.device}:{self.device_index}"

    def log_line(self) -> str:
        return (
            f"Using device={self.device_id} precision={self.compute_type} "
            f"(requested {self.requested_precision}): {self.reason}"
        )

    def as_dict(self) -> dict:
        return {
            "requested_device": self.requested_device,
            "requested_precision": self.requested_precision,
            "device": self.device_id,
            "precision": self.compute_type,
            "reason": self.reason,
            "fallback": self.fallback,
            "failures": [{"precision": p, "error": e} for p, e in self.failures],
        }


def check_precision(value: str) -> str:
    value = (value or "auto").strip().lower()
    if value not in PRECISIONS:
        raise UnknownPrecisionError(value, PRECISIONS)
    return value


def _pick_device(spec: str, devices: Iterable[DeviceInfo], strict: bool) -> tuple[DeviceInfo, str]:
    kind, index = parse_device(spec)
    devices = list(devices)
    cpu = next(d for d in devices if d.kind == "cpu")
    gpus = [d for d in devices if d.kind == "cuda"]
    if kind == "cpu":
        return cpu, ""
    if kind == "auto":
        if gpus:
            return gpus[0], f"auto picked {gpus[0].id}"
        return cpu, "auto picked cpu (no CUDA device)"
    for gpu in gpus:
        if gpu.index == index:
            return gpu, ""
    why = f"cuda:{index} is not available (CUDA devices: {', '.join(g.id for g in gpus) or 'none'})"
    if strict:
        raise UnknownDeviceError(why)
    return cpu, f"{why}; using cpu"


def resolve(
    device: str = "auto",
    precision: str = "auto",
    *,
    devices: Iterable[DeviceInfo] | None = None,
    strict: bool = False,
) -> Resolution:
    """Resolve ``(device, precision)`` against what the devices can really do.

    ``devices`` defaults to the real ones (``list_devices()``); tests pass fakes.
    """
    requested = check_precision(precision)
    dev, device_note = _pick_device(device, devices if devices is not None else list_devices(), strict)
    notes = [device_note] if device_note else []
    fallback = bool(device_note) and "not available" in device_note

    if requested == "auto":
        if dev.kind == "cuda":
            chosen = next(p for p in ("int8_float16", "int8_float32", "float32") if _supports(dev, p)[0])
            notes.append(f"auto is memory-lean: {chosen} on {dev.name or dev.id}")
        else:
            chosen = "int8"
            notes.append("auto is memory-lean: int8 weights with float32 activations on CPU")
        return Resolution(device, requested, dev.kind, dev.index, chosen, "; ".join(notes), fallback)

    ok, why = _supports(dev, requested)
    if ok:
        notes.append(why if not notes else f"{requested} as requested")
        return Resolution(device, requested, dev.kind, dev.index, requested, "; ".join(notes), fallback)

    alternatives = supported_precisions(dev)
    if strict:
        raise PrecisionUnsupportedError(
            f"precision {requested!r} cannot run on {dev.id}: {why} "
            f"(strict mode; supported here: {', '.join(alternatives)})"
        )
    chosen = next(p for p in _SUBSTITUTES[requested] if p in alternatives or p == "float32")
    notes.append(f"{requested} is not supported: {why}; using {chosen} instead")
    resolution = Resolution(device, requested, dev.kind, dev.index, chosen, "; ".join(notes), True)
    logger.warning("Precision fallback on %s: %s", dev.id, resolution.reason)
    return resolution


def runtime_chain(resolution: Resolution, devices: Iterable[DeviceInfo] | None = None) -> tuple[str, ...]:
    """The precisions to try, in order, starting with the resolved one."""
    devs = list(devices if devices is not None else list_devices())
    dev = next((d for d in devs if d.kind == resolution.device and d.index == resolution.device_index), None)
    rest = _RUNTIME_FALLBACK[resolution.compute_type]
    if dev is not None:
        rest = tuple(p for p in rest if _supports(dev, p)[0])
    return (resolution.compute_type, *rest)


T = TypeVar("T")


def load_with_fallback(
    resolution: Resolution,
    load: Callable[[str], T],
    *,
    strict: bool = False,
    devices: Iterable[DeviceInfo] | None = None,
) -> tuple[T, Resolution]:
    """Call ``load(compute_type)`` along the runtime chain until one succeeds.

    ``load`` should load the model *and* run a first inference, since some precisions
    only fail when a kernel first runs. Returns the loaded object and the final resolution
    (with ``fallback`` set and ``failures`` recorded when the first choice failed).
    """
    failures: list[tuple[str, str]] = []
    for compute_type in runtime_chain(resolution, devices):
        try:
            obj = load(compute_type)
        except MemoryError:
            raise
        except Exception as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if strict:
                raise PrecisionUnsupportedError(
                    f"precision {compute_type!r} failed on {resolution.device_id}: {message} (strict mode)"
                ) from exc
            logger.warning("Loading at %s on %s failed: %s", compute_type, resolution.device_id, message)
            failures.append((compute_type, message))
            continue
        if not failures:
            final = resolution
        else:
            tried = ", ".join(f"{p} ({e})" for p, e in failures)
            final = replace(
                resolution,
                compute_type=compute_type,
                fallback=True,
                failures=tuple(failures),
                reason=f"{resolution.reason}; failed at run time: {tried}; fell back to {compute_type}",
            )
        logger.info(final.log_line())
        return obj, final
    tried = ", ".join(f"{p} ({e})" for p, e in failures)
    raise PrecisionUnsupportedError(f"no precision could be loaded on {resolution.device_id}: {tried}")
