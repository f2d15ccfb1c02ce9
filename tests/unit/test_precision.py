import logging

import pytest

from leanspeech.devices import DeviceInfo
from leanspeech.errors import PrecisionUnsupportedError, UnknownDeviceError, UnknownPrecisionError
from leanspeech.precision import PRECISIONS, load_with_fallback, resolve, runtime_chain, supported_precisions

CPU = DeviceInfo("cpu", name="fake cpu", ct2_compute_types=frozenset({"float32", "int8", "int8_float32"}))
CPU_MKL = DeviceInfo(
    "cpu", name="fake mkl cpu", ct2_compute_types=frozenset({"float32", "int8", "int8_float32", "int16"})
)


def gpu(cc):
    return DeviceInfo("cuda", 0, f"fake sm{cc[0]}{cc[1]}", compute_capability=cc)


# requested -> effective, for each device; every precision on every device.
TABLE = {
    "cpu": (
        CPU,
        {
            "auto": "int8",
            "float32": "float32",
            "float16": "float32",
            "bfloat16": "float32",
            "int8": "int8",
            "int8_float32": "int8_float32",
            "int8_float16": "int8_float32",
            "int8_bfloat16": "int8_float32",
            "int16": "int8",
        },
    ),
    "cpu-mkl": (CPU_MKL, {"int16": "int16", "auto": "int8"}),
    "cuda-6.1": (
        gpu((6, 1)),
        {
            "auto": "int8_float32",
            "float32": "float32",
            "float16": "float32",
            "bfloat16": "float32",
            "int8": "int8",
            "int8_float32": "int8_float32",
            "int8_float16": "int8_float32",
            "int8_bfloat16": "int8_float32",
            "int16": "int8",
        },
    ),
    "cuda-6.0": (gpu((6, 0)), {"auto": "float32", "int8": "float32", "int8_float16": "float32", "float16": "float32"}),
    "cuda-7.5": (
        gpu((7, 5)),
        {
            "auto": "int8_float16",
            "float32": "float32",
            "float16": "float16",
            "bfloat16": "float16",
            "int8": "int8",
            "int8_float32": "int8_float32",
            "int8_float16": "int8_float16",
            "int8_bfloat16": "int8_float16",
            "int16": "int8",
        },
    ),
    "cuda-8.0": (
        gpu((8, 0)),
        {
            "auto": "int8_float16",
            "float32": "float32",
            "float16": "float16",
            "bfloat16": "bfloat16",
            "int8": "int8",
            "int8_float32": "int8_float32",
            "int8_float16": "int8_float16",
            "int8_bfloat16": "int8_bfloat16",
            "int16": "int8",
        },
    ),
    "cuda-12.0": (
        gpu((12, 0)),
        {
            "auto": "int8_float16",
            "float32": "float32",
            "float16": "float16",
            "bfloat16": "bfloat16",
            "int8": "int8",
            "int8_float32": "int8_float32",
            "int8_float16": "int8_float16",
            "int8_bfloat16": "int8_bfloat16",
            "int16": "int8",
        },
    ),
}
CASES = [(name, req, eff) for name, (_, table) in TABLE.items() for req, eff in table.items()]


@pytest.mark.parametrize("name,requested,expected", CASES)
def test_resolution_table(name, requested, expected):
    device = TABLE[name][0]
    res = resolve(device.kind, requested, devices=[device, CPU] if device.kind == "cuda" else [device])
    assert res.compute_type == expected
    assert res.device == device.kind
    assert res.reason
    assert res.fallback == (requested not in ("auto", expected))
    assert res.log_line().startswith(f"Using device={res.device_id} precision={expected} (requested {requested}): ")


def test_every_precision_is_covered():
    for name in ("cpu", "cuda-6.1", "cuda-7.5", "cuda-8.0", "cuda-12.0"):
        assert set(TABLE[name][1]) == set(PRECISIONS)


def test_float16_on_cpu_warns_with_reason(caplog):
    with caplog.at_level(logging.WARNING):
        res = resolve("cpu", "float16", devices=[CPU])
    assert res.compute_type == "float32"
    assert "no float16 kernels on CPU" in res.reason
    assert any("float16" in r.message and "float32" in r.message for r in caplog.records)


def test_strict_mode_refuses_substitution():
    with pytest.raises(PrecisionUnsupportedError) as err:
        resolve("cpu", "float16", devices=[CPU], strict=True)
    assert "float16" in str(err.value) and "int8" in str(err.value)  # names the alternatives


def test_unknown_precision_lists_choices():
    with pytest.raises(UnknownPrecisionError) as err:
        resolve("cpu", "int4", devices=[CPU])
    assert "int4" in str(err.value) and "int8_float16" in str(err.value)


def test_auto_device_prefers_gpu_and_missing_gpu_falls_back():
    assert resolve("auto", "auto", devices=[gpu((8, 6)), CPU]).device == "cuda"
    res = resolve("cuda:1", "auto", devices=[gpu((8, 6)), CPU])
    assert res.device == "cpu" and "cuda:1 is not available" in res.reason and res.fallback
    with pytest.raises(UnknownDeviceError):
        resolve("cuda:1", "auto", devices=[CPU], strict=True)
    with pytest.raises(UnknownDeviceError):
        resolve("tpu", "auto", devices=[CPU])


def test_supported_precisions():
    assert supported_precisions(CPU) == ("float32", "int8", "int8_float32")
    assert "bfloat16" not in supported_precisions(gpu((7, 5)))
    assert "bfloat16" in supported_precisions(gpu((12, 0)))


def test_failing_load_falls_back_along_chain(caplog):
    device = gpu((12, 0))
    res = resolve("cuda", "int8_float16", devices=[device, CPU])
    assert runtime_chain(res, [device, CPU]) == ("int8_float16", "float16", "float32")
    tried = []

    def load(compute_type):
        tried.append(compute_type)
        if compute_type.startswith("int8"):
            raise RuntimeError("cuBLAS failed with status CUBLAS_STATUS_NOT_SUPPORTED")
        return f"model@{compute_type}"

    with caplog.at_level(logging.INFO):
        model, final = load_with_fallback(res, load, devices=[device, CPU])
    assert model == "model@float16" and tried == ["int8_float16", "float16"]
    assert final.compute_type == "float16" and final.fallback
    assert final.failures == (("int8_float16", "cuBLAS failed with status CUBLAS_STATUS_NOT_SUPPORTED"),)
    assert "CUBLAS_STATUS_NOT_SUPPORTED" in final.reason
    assert any(
        r.message.startswith("Using device=cuda:0 precision=float16 (requested int8_float16)") for r in caplog.records
    )


def test_failing_load_in_strict_mode_raises():
    device = gpu((12, 0))
    res = resolve("cuda", "int8", devices=[device, CPU])

    def load(compute_type):
        raise RuntimeError("CUBLAS_STATUS_NOT_SUPPORTED")

    with pytest.raises(PrecisionUnsupportedError, match="strict"):
        load_with_fallback(res, load, strict=True, devices=[device, CPU])


def test_every_precision_failing_is_a_clear_error():
    res = resolve("cpu", "int8", devices=[CPU])
    with pytest.raises(PrecisionUnsupportedError, match="no precision could be loaded"):
        load_with_fallback(res, lambda ct: (_ for _ in ()).throw(RuntimeError("boom")), devices=[CPU])
