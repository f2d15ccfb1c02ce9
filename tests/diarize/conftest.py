import pytest


@pytest.fixture(scope="session")
def speaker_model(tmp_path_factory):
    from leanspeech.diarize.campplus import CamPlus, ensure_onnx

    model = CamPlus(ensure_onnx(tmp_path_factory.mktemp("models")))
    yield model
    model.close()
