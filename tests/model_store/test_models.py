"""Stored copies, synthetic architectures and `leanspeech plan` (offline, CPU)."""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import JFK_PHRASE, normalized

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def bundled():
    from leanspeech.models.store import resolve_model

    return resolve_model("tiny.en")


def cli(*args, model_dir, timeout=600):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LEANSPEECH_MODEL_DIR": str(model_dir)}
    return subprocess.run([sys.executable, "-m", "leanspeech", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def transcript(path, precision, jfk):
    import ctranslate2  # noqa: F401

    from leanspeech import Transcriber

    with Transcriber(str(path), precision=precision, cpu_threads=2, beam_size=1) as t:
        return t.transcribe(jfk).text


def test_a_bundled_model_resolves_without_the_download_stack():
    """The first local copy is the one used: resolving the bundled tiny.en never looks in the
    Hugging Face cache, whose lookup imports huggingface_hub's download stack (about 6 MiB)."""
    code = ("import sys; from leanspeech.models.store import resolve_model; r = resolve_model('tiny.en'); "
            "print(r.source, 'huggingface_hub.hf_api' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["bundled", "False"]


def test_round_trip_without_change(bundled, tmp_path, jfk):
    from leanspeech.models.modelbin import read_header
    from leanspeech.models.quantize import build_spec, read_arrays, read_vocabulary, save_atomic

    header = read_header(bundled.path)
    spec = build_spec(header, read_arrays(header), read_vocabulary(bundled.path))
    spec.validate()
    spec.optimize(quantization=None)  # no change: float16 stays float16
    out = save_atomic(spec, tmp_path / "copy", bundled.path)
    copy = read_header(out)

    def weights(h):  # the current CTranslate2 adds scalar flags an older model.bin lacks
        with open(h.path, "rb") as fh:
            out = {}
            for v in h.variables:
                if v.shape:
                    fh.seek(v.offset)
                    out[v.name] = (v.shape, v.dtype, fh.read(v.nbytes))
            return out

    assert weights(copy) == weights(header)
    assert transcript(out, "float32", jfk) == transcript(bundled.path, "float32", jfk)


def test_int8_copy_is_smaller_loads_and_matches(bundled, model_dir, jfk):
    from leanspeech.models.quantize import dir_bytes, quantize_model

    path = quantize_model(bundled, "int8", model_dir)
    assert (path / "model.bin").stat().st_size <= 0.55 * (bundled.path / "model.bin").stat().st_size
    assert (path / "tokenizer.json").is_file() and (path / "config.json").is_file()
    assert dir_bytes(path) < dir_bytes(bundled.path)
    assert quantize_model(bundled, "int8", model_dir) == path  # made once
    stored = transcript(path, "int8", jfk)
    # The same words. Punctuation can differ by CPU: CTranslate2's own int8 rounding at load
    # and the converter's can differ on a few weights (here "do for you, ask" against "do for
    # you ask"; on the CPU of an earlier session and on CI they matched character for character).
    assert normalized(stored) == normalized(transcript(bundled.path, "int8", jfk))
    assert JFK_PHRASE in normalized(stored)


def test_loads_use_the_stored_copy(bundled, model_dir, jfk, caplog):
    import logging

    from leanspeech import Transcriber
    from leanspeech.models.quantize import quantize_model

    quantize_model(bundled, "int8", model_dir)  # made once: here, or by the test before

    with (
        caplog.at_level(logging.INFO),
        Transcriber("tiny.en", precision="int8", cpu_threads=2, model_dir=model_dir) as t,
    ):
        assert t.engine.resolved.source == "stored-int8"
        assert JFK_PHRASE in normalized(t.transcribe(jfk).text)
    assert any("Using the stored int8 copy" in r.message for r in caplog.records)


def test_quantize_on_disk_creates_the_copy(tmp_path, jfk):
    from leanspeech import Transcriber

    with Transcriber(
        "tiny.en", precision="int8_float32", cpu_threads=2, model_dir=tmp_path, quantize_on_disk=True
    ) as t:
        assert t.engine.resolved.source == "stored-int8_float32"
    assert (tmp_path / "quantized" / "tiny.en-int8_float32" / "model.bin").is_file()
    assert not list((tmp_path / "quantized").glob(".*"))  # no temp dir left behind


def test_full_disk_cleans_up(bundled, tmp_path, monkeypatch):
    from ctranslate2.specs import model_spec

    from leanspeech.models.quantize import DiskFullError, quantize_model

    def full(self, output_dir):
        Path(output_dir, "model.bin").write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model_spec.LanguageModelSpec, "save", full)
    with pytest.raises(DiskFullError, match="no space left"):
        quantize_model(bundled, "int8", tmp_path)
    leftovers = [p for p in (tmp_path / "quantized").iterdir()] if (tmp_path / "quantized").exists() else []
    assert leftovers == []


def test_synthetic_models_load_decode_and_are_never_served(model_dir):
    import ctranslate2
    import numpy as np

    from leanspeech import Transcriber
    from leanspeech.errors import InvalidModelNameError
    from leanspeech.models.catalog import CATALOG
    from leanspeech.models.modelbin import architecture, read_header
    from leanspeech.models.synth import build_synthetic

    for name in ("tiny", "base"):
        path = build_synthetic(name, model_dir)
        assert json.loads((path / "SYNTHETIC").read_text())["synthetic"] is True
        assert architecture(read_header(path)) == CATALOG[name].arch
        model = ctranslate2.models.Whisper(str(path), compute_type="int8", intra_threads=2)
        feats = np.zeros((1, CATALOG[name].arch.n_mels, 3000), dtype=np.float32)
        from leanspeech.measure.plan_child import special_ids

        prompt, eot = special_ids(path)
        out = model.generate(
            ctranslate2.StorageView.from_array(feats), [prompt], max_length=16, suppress_tokens=[eot]
        )  # CT2 decodes max_length // 2
        assert len(out[0].sequences_ids[0]) == 8
        with pytest.raises(InvalidModelNameError, match="synthetic"):
            Transcriber(str(path))


def test_turbo_architecture_has_128_mels_and_4_decoder_layers():
    from leanspeech.models.catalog import CATALOG
    from leanspeech.models.synth import synthetic_arrays

    arch = CATALOG["large-v3-turbo"].arch
    assert arch.n_mels == 128 and arch.decoder_layers == 4 and arch.encoder_layers == 32 and arch.vocab_size == 51866
    tiny_like = synthetic_arrays(CATALOG["tiny"].arch)
    assert tiny_like["encoder/conv1/weight"].shape == (384, 80, 3)


def test_cli_list_info_quantize_rm(tmp_path):
    from leanspeech.models.synth import build_synthetic

    model_dir = tmp_path  # its own: the other tests of this module may run before or after it
    build_synthetic("tiny", model_dir)
    r = cli("models", "list", "--json", model_dir=model_dir)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    tiny = next(m for m in data["catalog"] if m["name"] == "tiny.en")
    assert tiny["present"] and tiny["stored_dtype"] == "float16" and tiny["bytes"] > 70e6
    assert any(s["synthetic"] for s in data["stored"])
    r = cli("models", "info", "large-v3-turbo", "--json", model_dir=model_dir)
    info = json.loads(r.stdout)
    assert info["architecture"]["decoder_layers"] == 4 and info["architecture"]["n_mels"] == 128
    assert 1.55e9 < info["weight_bytes"]["float16"] < 1.7e9  # ~809M params x 2 bytes, not "6-8 GB"
    r = cli("models", "quantize", "tiny.en", "--precision", "int4", model_dir=model_dir)
    assert r.returncode == 2 and "int4" in r.stderr and "Traceback" not in r.stderr
    r = cli("models", "info", "huge-v9", model_dir=model_dir)
    assert r.returncode == 2 and "unknown model" in r.stderr
    r = cli("models", "pull", "small", model_dir=model_dir)  # base is bundled now (leanspeech[multilingual])
    assert r.returncode == 1 and "offline" in r.stderr
    r = cli("models", "rm", "tiny", model_dir=model_dir)
    assert r.returncode == 0 and "synthetic" in r.stdout


def test_corrupt_model_bin_is_a_clear_cli_error(tmp_path, jfk):
    bad = tmp_path / "bad-model"
    bad.mkdir()
    (bad / "model.bin").write_bytes(b"\x06\x00\x00\x00garbage")
    r = cli("transcribe", str(jfk), "--model", str(bad), model_dir=tmp_path)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "model.bin" in r.stderr


def plan(models: str, *extra: str, model_dir):
    """``leanspeech plan`` of ``models`` at int8, batch 1, 2 threads."""
    return cli("plan", "--models", models, "--precisions", "int8", "--batch-sizes", "1", "--threads", "2", *extra,
               model_dir=model_dir)


@pytest.mark.slow
def test_plan_on_synthetic_tiny_and_base_en(model_dir, tmp_path):
    r = plan("tiny,base.en", "--json", "--out", str(tmp_path), model_dir=model_dir)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert len(report["rows"]) == 2
    for row in report["rows"]:
        assert row["ok"] and row["synthetic"] is True
        assert row["peak_bytes"] > 0 and row["load_s"] > 0 and 0 < row["rtf_greedy"] and 0 < row["rtf_beam5"]
        assert row["estimate_bytes"] > 0 and row["estimate_error"] is not None
        assert row["tokens"] == 64  # synthetic models never stop early
    tiny, base = report["rows"]
    assert base["peak_bytes"] > tiny["peak_bytes"]
    assert report["recommendation"]["model"] == "base.en"
    png = (tmp_path / "plan.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # second run: from the cache
    again = json.loads(plan("tiny,base.en", "--json", model_dir=model_dir).stdout)
    assert all(row.get("cached") for row in again["rows"])
    # a budget that nothing fits
    r = plan("tiny", "--budget", "1MB", model_dir=model_dir)
    assert r.returncode == 0 and "Nothing fits" in r.stdout and "smallest" in r.stdout


def test_plan_rejects_a_precision_the_device_cannot_run(model_dir):
    r = cli("plan", "--models", "tiny", "--precisions", "float16", model_dir=model_dir)
    assert r.returncode == 2 and "cannot run float16" in r.stderr and "int8" in r.stderr
