import pytest

from helpers import Server  # noqa: F401  (the live server helper lives in tests/helpers.py)


@pytest.fixture(scope="module")
def make_server(tmp_path_factory):
    servers = []

    def make(env=None, args=(), wait_ready=True):
        s = Server(env or {}, args, wait_ready, tmp_path_factory.mktemp("srv"))
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def server(make_server):
    """The default server: bundled tiny.en, defaults."""
    return make_server()


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)
