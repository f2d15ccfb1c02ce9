import pytest


@pytest.fixture(scope="module")
def server(make_server):
    """One server for every protocol: HTTP, WhisperLive's port, Realtime and Wyoming, with a
    small Realtime append limit (to test it) and a batch window long enough that concurrent
    sessions' decodes meet in the batcher on any CPU."""
    return make_server({"wyoming": True, "LEANSPEECH_REALTIME__MAX_APPEND_BYTES": "1MiB",
                        "LEANSPEECH_SERVER__BATCH_WINDOW_MS": "40"})


@pytest.fixture(scope="module")
def jfk_audio(jfk):
    from leanspeech.audio import decode_audio

    return decode_audio(jfk)
