"""The Ray adapters without Ray running: what a replica's settings turn off, the replica
header, and the clear error when Ray is not installed."""

import sys

import httpx
import pytest
from fastapi import FastAPI

from leanspeech.config import Settings
from leanspeech.errors import OptionalDependencyError


def test_a_replica_opens_no_port_of_its_own_and_keeps_the_key():
    from leanspeech.server.ray_serve import replica_settings

    s = Settings.model_validate({"server": {"api_key": "k-0123456789abcdef"}, "live": {"port": 9090},
                                 "wyoming": {"stt_port": 10300, "tts_port": 10200}})
    r = replica_settings(s)
    assert (r.live.port, r.wyoming.stt_port, r.wyoming.tts_port) == (-1, -1, -1)
    assert r.server.api_key.get_secret_value() == "k-0123456789abcdef"


@pytest.mark.anyio
async def test_every_http_response_names_its_replica():
    from leanspeech.server.ray_serve import ReplicaHeader

    app = FastAPI()

    @app.get("/x")
    async def x():
        return {"ok": True}

    wrapped = ReplicaHeader(app, replica="r-1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://127.0.0.1") as c:
        r = await c.get("/x")
        assert r.headers["x-leanspeech-replica"] == "r-1" and r.json() == {"ok": True}
        assert (await c.get("/nothing")).headers["x-leanspeech-replica"] == "r-1"


@pytest.fixture
def anyio_backend():
    return "asyncio"


def test_without_ray_the_error_says_what_to_install(monkeypatch):
    from leanspeech.batch import on_ray as batch
    from leanspeech.server import ray_serve as serve

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(OptionalDependencyError, match=r"leanspeech\[ray\]"):
        serve.build_deployment(Settings())
    with pytest.raises(OptionalDependencyError, match=r"leanspeech\[ray\]"):
        batch.run_ray_batch([], (), {}, workers=1)


def test_autoscaling_bounds_are_checked(monkeypatch):
    pytest.importorskip("ray.serve")
    from leanspeech.errors import InvalidOptionError
    from leanspeech.server.ray_serve import build_deployment

    with pytest.raises(InvalidOptionError, match="below min_replicas"):
        build_deployment(Settings.model_validate({"ray": {"min_replicas": 3, "max_replicas": 2}}))
