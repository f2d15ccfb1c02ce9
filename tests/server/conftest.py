import pytest


@pytest.fixture(scope="module")
def server(make_server):
    """The default server: bundled tiny.en, defaults."""
    return make_server()


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)
