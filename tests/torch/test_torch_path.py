"""The PyTorch path: exact export to transformers and openai-whisper, the torch backend at
every CPU precision, its fallbacks and errors (torch from the machine's local CPU wheel)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import JFK_PHRASE, load_audio, normalized

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytestmark = [pytest.mark.model, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def resolved():
    from leanspeech.models.store import resolve_model

    return resolve_model("tiny.en", offline=True)


@pytest.fixture(scope="module")
def exports(resolved, tmp_path_factory):
    from leanspeech.models.export import export

    base = tmp_path_factory.mktemp("exports")
    return {"transformers": export(resolved.path, base / "hf", "transformers"),
            "openai-whisper": export(resolved.path, base / "ow", "openai-whisper")}


@pytest.fixture(scope="module")
def audio(jfk):
    return load_audio(jfk)


@pytest.fixture(scope="module")
def ct2_float32_text(resolved, audio):
    from faster_whisper import WhisperModel

    model = WhisperModel(str(resolved.path), device="cpu", compute_type="float32", cpu_threads=2)
    segments, _ = model.transcribe(audio, beam_size=1, temperature=0.0, language="en", without_timestamps=True,
                                   condition_on_previous_text=False, vad_filter=False)
    return " ".join(s.text for s in segments)


def test_exported_weights_give_ct2s_encoder_output(resolved, exports, audio):
    """Same mel features into CTranslate2 float32 and the transformers export: the encoder
    outputs agree to float32 rounding (a wrong split or transpose would be off by O(1))."""
    from faster_whisper import WhisperModel
    from transformers import WhisperForConditionalGeneration

    fw = WhisperModel(str(resolved.path), device="cpu", compute_type="float32", cpu_threads=2)
    features = fw.feature_extractor(audio)[:, :3000]
    features = np.pad(features, ((0, 0), (0, 3000 - features.shape[1])))
    ct2 = np.array(fw.encode(features)).reshape(1, 1500, -1)
    hf = WhisperForConditionalGeneration.from_pretrained(str(exports["transformers"]), local_files_only=True).eval()
    with torch.inference_mode():
        out = hf.model.encoder(torch.from_numpy(features[None].astype(np.float32))).last_hidden_state.numpy()
    assert np.abs(out - ct2).max() < 2e-3, np.abs(out - ct2).max()


def test_transformers_export_gives_the_same_greedy_transcript(exports, audio, ct2_float32_text):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    processor = WhisperProcessor.from_pretrained(str(exports["transformers"]), local_files_only=True)
    model = WhisperForConditionalGeneration.from_pretrained(str(exports["transformers"]), local_files_only=True).eval()
    features = processor.feature_extractor(audio, sampling_rate=16000, return_tensors="pt").input_features
    with torch.inference_mode():
        ids = model.generate(features, num_beams=1, do_sample=False)
    text = processor.batch_decode(ids, skip_special_tokens=True)[0]
    assert normalized(text).split() == normalized(ct2_float32_text).split(), (text, ct2_float32_text)


def test_openai_whisper_export_gives_the_same_greedy_transcript(exports, audio, ct2_float32_text):
    whisper = pytest.importorskip("whisper")
    model = whisper.load_model(str(exports["openai-whisper"]), device="cpu")
    out = whisper.transcribe(model, audio, temperature=0.0, fp16=False, without_timestamps=True,
                             condition_on_previous_text=False, verbose=None)
    assert normalized(out["text"]).split() == normalized(ct2_float32_text).split(), (out["text"], ct2_float32_text)


@pytest.fixture(scope="module")
def engines(resolved, tmp_path_factory):
    from leanspeech.stt.torch_engine import TorchEngine

    model_dir = tmp_path_factory.mktemp("models")
    loaded = {p: TorchEngine.load(resolved, device="cpu", precision=p, model_dir=model_dir, cpu_threads=2)
              for p in ("float32", "bfloat16", "int8-dynamic", "autocast")}
    yield loaded
    for engine in loaded.values():
        engine.close()


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "int8-dynamic", "autocast"])
def test_torch_backend_transcribes_at_each_cpu_precision(engines, jfk, precision):
    from leanspeech.stt import Transcriber

    result = Transcriber(engine=engines[precision], batch_size=8).transcribe(jfk)
    assert JFK_PHRASE in normalized(result.text), result.text
    assert result.info.precision == precision and result.info.device == "cpu"
    assert result.segments and result.segments[0].start >= 0 and result.segments[-1].end <= 11.1


def test_int8_dynamic_shrinks_linear_weights_at_least_3x(engines):
    before, after = engines["float32"].linear_weight_bytes, engines["int8-dynamic"].linear_weight_bytes
    print(
        f"Linear weights: float32 {before / 2**20:.1f} MiB, "
        f"int8-dynamic {after / 2**20:.1f} MiB ({before / after:.2f}x)"
    )
    assert before / after >= 3.0
    assert engines["bfloat16"].linear_weight_bytes * 2 == before


def test_float16_on_cpu_falls_back_with_its_reason_and_strict_refuses():
    from leanspeech.errors import PrecisionUnsupportedError, UnknownPrecisionError
    from leanspeech.stt.torch_engine import resolve_torch

    r = resolve_torch("cpu", "float16")
    assert r.compute_type == "float32" and r.fallback and "CUDA-only" in r.reason
    with pytest.raises(PrecisionUnsupportedError, match="float16"):
        resolve_torch("cpu", "float16", strict=True)
    with pytest.raises(UnknownPrecisionError, match="int8-dynamic"):
        resolve_torch("cpu", "int8_float16")
    assert resolve_torch("cpu", "int8").compute_type == "int8-dynamic"
    assert resolve_torch("cpu", "auto").compute_type == "float32"


def test_word_timestamps_are_refused_clearly(engines, jfk):
    from leanspeech.errors import InvalidOptionError
    from leanspeech.stt import Transcriber

    with pytest.raises(InvalidOptionError, match="word timestamps"):
        Transcriber(engine=engines["float32"]).transcribe(jfk, word_timestamps=True)


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "leanspeech", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )


def test_cli_export_needs_force_for_an_existing_target(tmp_path):
    target = tmp_path / "hf"
    first = run("models", "export", "tiny.en", "--format", "transformers", "--output", str(target))
    assert first.returncode == 0, first.stderr
    assert (target / "model.safetensors").is_file() and (target / "generation_config.json").is_file()
    again = run("models", "export", "tiny.en", "--format", "transformers", "--output", str(target))
    assert again.returncode != 0 and "--force" in again.stderr and "Traceback" not in again.stderr
    forced = run("models", "export", "tiny.en", "--format", "transformers", "--output", str(target), "--force")
    assert forced.returncode == 0, forced.stderr
    bad = run("models", "export", "tiny.en", "--format", "onnx")
    assert bad.returncode == 2 and "transformers, openai-whisper" in bad.stderr


def test_cli_torch_backend_and_the_fallback_reason(jfk, tmp_path):
    proc = run(
        "transcribe",
        str(jfk),
        "--backend",
        "torch",
        "-p",
        "float16",
        "--threads",
        "2",
        env={"XDG_CACHE_HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    assert JFK_PHRASE in normalized(proc.stdout)
    assert "float32 (requested float16)" in proc.stderr


def test_without_torch_the_backend_gives_an_install_hint(jfk, tmp_path):
    # A torch that cannot be imported, as on a machine without the extra.
    (tmp_path / "torch.py").write_text("raise ImportError('No module named torch', name='torch')\n")
    proc = run("transcribe", str(jfk), "--backend", "torch", env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "pip install 'leanspeech[torch]'" in proc.stderr
