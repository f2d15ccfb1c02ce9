import pytest

from leanspeech.config import Settings, settings_markdown, settings_rows

LEGACY = ("WHISPER_MODEL_SIZE", "DEVICE_TYPE", "WL_COMPUTE_TYPE", "MODEL_DTYPE", "USE_INT8_QUANTIZATION",
          "MEMORY_CLEANUP_INTERVAL", "MAX_CHUNK_LENGTH", "MAX_TOTAL_LENGTH")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    import os

    for key in list(os.environ):
        if key.startswith("LEANSPEECH_") or key in LEGACY:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults():
    s = Settings()
    assert (s.stt.model, s.stt.device, s.stt.precision) == ("tiny.en", "auto", "auto")
    assert s.server.host == "127.0.0.1" and s.server.port == 8000
    assert s.stt.model_ttl == 300 and s.strict_precision is False


def test_prefixed_nested_names(monkeypatch):
    monkeypatch.setenv("LEANSPEECH_STT__PRECISION", "float32")
    monkeypatch.setenv("LEANSPEECH_STRICT_PRECISION", "true")
    monkeypatch.setenv("LEANSPEECH_MEMORY__BUDGET", "4GiB")
    s = Settings()
    assert s.stt.precision == "float32" and s.strict_precision and s.memory.budget == "4GiB"


def test_legacy_names_are_read(monkeypatch):
    monkeypatch.setenv("WHISPER_MODEL_SIZE", "large-v3-turbo")
    monkeypatch.setenv("DEVICE_TYPE", "cuda")
    monkeypatch.setenv("WL_COMPUTE_TYPE", "int8")
    monkeypatch.setenv("MODEL_DTYPE", "float16")
    monkeypatch.setenv("MEMORY_CLEANUP_INTERVAL", "3")
    s = Settings()
    assert (s.stt.model, s.stt.device, s.stt.precision) == ("large-v3-turbo", "cuda", "int8")
    assert s.tts.precision == "float16" and s.memory.cleanup_interval == 3


def test_leanspeech_name_wins_over_legacy(monkeypatch):
    monkeypatch.setenv("WL_COMPUTE_TYPE", "int8")
    monkeypatch.setenv("LEANSPEECH_STT__PRECISION", "float32")
    assert Settings().stt.precision == "float32"


def test_use_int8_quantization_wins_over_model_dtype(monkeypatch):
    monkeypatch.setenv("MODEL_DTYPE", "float16")
    monkeypatch.setenv("USE_INT8_QUANTIZATION", "true")
    assert Settings().tts.precision == "int8"
    monkeypatch.setenv("LEANSPEECH_TTS__PRECISION", "float32")
    assert Settings().tts.precision == "float32"


def test_dotenv_file_with_legacy_names(tmp_path):
    (tmp_path / ".env").write_text("WHISPER_MODEL_SIZE=base\nWL_COMPUTE_TYPE=int8_float32\n")
    s = Settings()
    assert s.stt.model == "base" and s.stt.precision == "int8_float32"


def test_bad_values_are_rejected(monkeypatch):
    monkeypatch.setenv("WL_COMPUTE_TYPE", "int4")
    with pytest.raises(Exception, match="int4|precision"):
        Settings()
    monkeypatch.delenv("WL_COMPUTE_TYPE")
    monkeypatch.setenv("LEANSPEECH_MEMORY__BUDGET", "lots")
    with pytest.raises(Exception, match="byte size"):
        Settings()


def test_encoder_padding_empty_or_none_means_whisper_s_30_seconds(monkeypatch):
    assert Settings().live.encoder_padding == 5.0 and Settings().stt.encoder_padding is None
    for value in ("", "none", "None"):
        monkeypatch.setenv("LEANSPEECH_LIVE__ENCODER_PADDING", value)
        assert Settings().live.encoder_padding is None
    monkeypatch.setenv("LEANSPEECH_LIVE__ENCODER_PADDING", "2.5")
    assert Settings().live.encoder_padding == 2.5
    monkeypatch.setenv("LEANSPEECH_LIVE__ENCODER_PADDING", "31")
    with pytest.raises(Exception, match="30"):
        Settings()
    from leanspeech.errors import InvalidOptionError
    from leanspeech.stt.options import TranscribeOptions

    with pytest.raises(InvalidOptionError, match="encoder_padding"):
        TranscribeOptions(encoder_padding=-1)


def test_secrets_are_redacted(monkeypatch):
    monkeypatch.setenv("LEANSPEECH_SERVER__API_KEY", "s3cret-0123456789")
    data = Settings().redacted()
    assert data["server"]["api_key"] == "**********" and "s3cret-0123456789" not in str(data)


def test_settings_table_covers_every_field():
    rows = settings_rows()
    names = {r[0] for r in rows}
    assert {"LEANSPEECH_STT__MODEL", "LEANSPEECH_STT__PRECISION", "LEANSPEECH_STRICT_PRECISION",
            "LEANSPEECH_MEMORY__BUDGET", "LEANSPEECH_SERVER__PORT"} <= names
    assert all(r[3] for r in rows), "every setting has a description"
    table = settings_markdown()
    assert "`WL_COMPUTE_TYPE`" in table and "`WHISPER_MODEL_SIZE`" in table


def test_the_docs_settings_table_is_current():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    start = page.index("<!-- settings-table -->") + len("<!-- settings-table -->")
    end = page.index("<!-- /settings-table -->")
    assert page[start:end].strip() == settings_markdown().strip(), "run: leanspeech config --markdown"


def test_the_benchmark_pages_and_the_readme_table_are_current():
    """``docs/benchmarks/`` and the README's headline table are what ``results_pages.py``
    writes from the committed results."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "results_pages.py"), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_every_test_directory_is_collected():
    """``testpaths`` lists the test directories (tests/ray last, for time): a new one must be
    listed too, or pytest would never run it."""
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    root = Path(__file__).resolve().parents[2]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["testpaths"])
    present = {f"tests/{d.name}" for d in (root / "tests").iterdir() if d.is_dir() and any(d.glob("test_*.py"))}
    assert present <= listed, sorted(present - listed)
