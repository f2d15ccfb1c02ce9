"""ModelManager with fake loaders: TTL, budget eviction, reference counts, one load per model."""

import threading
import time

import pytest

from leanspeech.errors import MemoryBudgetError
from leanspeech.runtime.manager import LoaderSpec, ModelManager


class Model:
    def __init__(self, name):
        self.name = name
        self.closed = False

    def close(self):
        self.closed = True


def spec(ttl=-1, size=100, loads=None, delay=0.0, candidates=("small", "tiny")):
    def load(name):
        if delay:
            time.sleep(delay)
        model = Model(name)
        if loads is not None:
            loads.append(model)
        return model

    return LoaderSpec(load=load, estimate=lambda name: size, ttl=ttl, candidates=lambda: list(candidates))


def test_ttl_minus_one_never_unloads():
    m = ModelManager({"stt": spec(ttl=-1)})
    with m.acquire("stt", "a"):
        pass
    assert m.reap(now=time.time() + 10**6) == []
    assert m.is_loaded("stt", "a")


def test_ttl_zero_unloads_when_the_last_handle_goes():
    loads = []
    m = ModelManager({"stt": spec(ttl=0, loads=loads)})
    first = m.checkout("stt", "a")
    second = m.checkout("stt", "a")
    m.checkin(first)
    assert m.is_loaded("stt", "a")  # still held by the second handle
    m.checkin(second)
    assert not m.is_loaded("stt", "a") and loads[0].closed
    assert m.unloads[-1]["key"] == "stt:a" and m.unload_count == 1


def test_ttl_n_unloads_after_n_idle_seconds():
    m = ModelManager({"stt": spec(ttl=30)})
    with m.acquire("stt", "a"):
        pass
    assert m.reap(now=time.time() + 29) == []
    assert [r["key"] for r in m.reap(now=time.time() + 31)] == ["stt:a"]
    assert not m.is_loaded("stt", "a")


def test_a_held_model_is_never_reaped_or_cleaned_up():
    m = ModelManager({"stt": spec(ttl=1)})
    entry = m.checkout("stt", "a")
    assert m.reap(now=time.time() + 100) == []
    assert m.cleanup()["unloaded"] == []
    assert m.status()[0]["refs"] == 1
    m.checkin(entry)
    assert m.cleanup()["unloaded"] == ["stt:a"]


def test_budget_unloads_the_least_recently_used_idle_model():
    loads = []
    m = ModelManager({"stt": spec(size=60, loads=loads)}, budget=130)
    for name in ("a", "b"):
        with m.acquire("stt", name):
            pass
        time.sleep(0.01)
    with m.acquire("stt", "c"):  # 3 x 60 > 130: "a", used first, makes room
        pass
    assert [s["name"] for s in m.status()] == ["b", "c"]
    assert loads[0].closed and not loads[1].closed
    assert m.used() == 120 and m.headroom() == 10


def test_budget_refuses_when_only_held_models_could_make_room():
    m = ModelManager({"stt": spec(size=60)}, budget=100, budget_label="100B")
    held = m.checkout("stt", "a")
    with pytest.raises(MemoryBudgetError, match="needs about") as err:
        m.checkout("stt", "b")
    assert "100B" in str(err.value) and "in use: a" in str(err.value)
    m.checkin(held)
    assert m.is_loaded("stt", "a")  # nothing was unloaded by the refusal


def test_a_model_larger_than_the_budget_names_what_would_fit():
    sizes = {"big": 500, "small": 80, "tiny": 40}
    m = ModelManager({"stt": LoaderSpec(load=Model, estimate=lambda n: sizes[n], ttl=-1,
                                        candidates=lambda: ["small", "tiny"])}, budget=100)
    with pytest.raises(MemoryBudgetError, match="would fit now: small, tiny"):
        m.checkout("stt", "big")


def test_concurrent_requests_load_a_model_once():
    loads = []
    m = ModelManager({"stt": spec(loads=loads, delay=0.2)})
    entries = []

    def take():
        entries.append(m.checkout("stt", "a"))

    threads = [threading.Thread(target=take) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and m.status()[0]["refs"] == 5
    for e in entries:
        m.checkin(e)
    assert m.status()[0]["refs"] == 0 and m.status()[0]["uses"] == 5


def test_cleanup_interval_unloads_idle_models_every_n_requests():
    m = ModelManager({"stt": spec()}, cleanup_interval=2)
    with m.acquire("stt", "a"):
        pass
    assert m.is_loaded("stt", "a")
    with m.acquire("stt", "a"):
        pass
    assert not m.is_loaded("stt", "a")


def test_a_preload_does_not_count_as_a_request():
    m = ModelManager({"stt": spec()}, cleanup_interval=1)
    with m.acquire("stt", "a", counted=False):
        pass
    assert m.is_loaded("stt", "a")
