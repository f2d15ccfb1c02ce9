"""On a CUDA device: both backends at their GPU precisions, VRAM through NVML and
torch.cuda, and the fallbacks. Skipped where there is no CUDA device (CI, this project's
CPU machines); run on a lent GPU with ``pytest tests/gpu``."""

import pytest

from helpers import JFK_PHRASE, normalized

pytestmark = [pytest.mark.gpu, pytest.mark.model, pytest.mark.timeout(900)]


def _ct2_cuda() -> bool:
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    except Exception:
        return False


def _torch_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


needs_ct2 = pytest.mark.skipif(not _ct2_cuda(), reason="no CUDA device visible to CTranslate2")
needs_torch = pytest.mark.skipif(not _torch_cuda(), reason="no CUDA device visible to PyTorch")


@needs_ct2
@pytest.mark.parametrize("precision", ["auto", "int8_float16", "float16", "float32"])
def test_ct2_on_cuda(jfk, precision):
    from leanspeech import Transcriber
    from leanspeech.memory import gpu_memory

    with Transcriber("tiny.en", device="cuda", precision=precision) as t:
        result = t.transcribe(jfk)
        assert JFK_PHRASE in normalized(result.text)
        assert result.info.device == "cuda:0"
        if precision == "auto":
            assert result.info.precision in ("int8_float16", "int8_float32", "float32")
        used = gpu_memory()
        assert used and used[0].total > 0 and used[0].used > 0


@needs_torch
@pytest.mark.parametrize("precision", ["float16", "bfloat16", "float32", "autocast"])
def test_torch_backend_on_cuda(jfk, precision):
    import torch

    from leanspeech import Transcriber
    from leanspeech.memory import torch_memory

    with Transcriber("tiny.en", device="cuda", precision=precision, backend="torch") as t:
        res = t.resolution
        result = t.transcribe(jfk)
        assert JFK_PHRASE in normalized(result.text)
        expected = precision
        if precision == "bfloat16" and not torch.cuda.is_bf16_supported():
            expected = "float16"  # and the reason says why
            assert res.fallback and "bfloat16" in res.reason
        assert res.device_id == "cuda:0" and res.compute_type == expected
        readings = torch_memory()
        assert readings["cuda_available"] and readings["devices"][0]["memory_allocated"] > 0


@needs_torch
def test_torch_int8_dynamic_on_cuda_falls_back_with_a_reason():
    from leanspeech.stt.torch_engine import resolve_torch

    res = resolve_torch("cuda", "int8-dynamic")
    assert res.compute_type == "float16" and res.fallback and "CPU kernels only" in res.reason
    from leanspeech.errors import PrecisionUnsupportedError

    with pytest.raises(PrecisionUnsupportedError):
        resolve_torch("cuda", "int8-dynamic", strict=True)


@needs_torch
def test_nvml_sees_this_process():
    import torch

    from leanspeech.memory import gpu_memory, nvml_available

    if not nvml_available():
        pytest.skip("NVML (the NVIDIA driver library) is not loadable here")
    block = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")
    gpus = gpu_memory()
    assert gpus[0].used >= 256 * 2**20
    del block
