import numpy as np
import pytest

from leanspeech.memory import PeakSampler, format_bytes, gpu_memory, parse_bytes, release_memory, rss, snapshot


@pytest.mark.parametrize("text,value", [("4GiB", 4 * 1024**3), ("512MB", 512 * 10**6), ("1.5G", 1_500_000_000),
                                         ("1024", 1024), (2048, 2048), ("", None), (None, None), ("0", None)])
def test_parse_bytes(text, value):
    assert parse_bytes(text) == value


def test_parse_bytes_rejects_garbage():
    with pytest.raises(ValueError, match="4GiB"):
        parse_bytes("four gigs")


def test_format_bytes():
    assert format_bytes(512) == "512 B" and format_bytes(3 * 1024**3) == "3.0 GiB"


def test_peak_sampler_sees_a_transient_allocation():
    with PeakSampler(0.001) as sampler:
        block = np.ones(200 * 1024**2 // 8)  # 200 MiB, touched
        block.sum()
        import time

        time.sleep(0.05)
        del block
    assert sampler.delta > 150 * 1024**2
    release_memory()
    assert rss() < sampler.peak - 100 * 1024**2


def test_snapshot_shape_without_gpu():
    snap = snapshot()
    assert snap["process"]["rss"] > 0 and snap["system"]["total"] > 0
    assert isinstance(snap["gpus"], list) and gpu_memory() == snap["gpus"] or True


def test_malloc_arena_limit():
    import platform

    from leanspeech.tuning.malloc import limit_malloc_arenas

    assert limit_malloc_arenas(0) is False  # 0 leaves glibc's default alone
    if platform.libc_ver()[0] == "glibc":
        assert limit_malloc_arenas(64) is True  # the mallopt call is accepted


def test_mmap_threshold_is_fixed_and_bounded():
    import platform

    from pydantic import ValidationError

    from leanspeech.config import Settings
    from leanspeech.tuning.malloc import MMAP_THRESHOLD, fix_mmap_threshold, mmap_threshold

    assert fix_mmap_threshold(0) is False  # 0 leaves glibc's rising threshold alone
    if platform.libc_ver()[0] == "glibc":
        assert fix_mmap_threshold(MMAP_THRESHOLD) is True
    auto = Settings().memory.malloc_mmap_threshold
    # auto: fixed where files are transcribed, glibc's own in the server (its throughput)
    assert auto == "auto" and mmap_threshold(auto, server=False) == MMAP_THRESHOLD
    assert mmap_threshold(auto, server=True) == 0
    given = Settings(memory={"malloc_mmap_threshold": "8MiB"}).memory.malloc_mmap_threshold
    assert mmap_threshold(given, server=True) == mmap_threshold(given, server=False) == 8 * 2**20
    assert mmap_threshold("0", server=False) == 0
    with pytest.raises(ValidationError, match="at most 32MiB"):
        Settings(memory={"malloc_mmap_threshold": "64MiB"})  # glibc would refuse it silently
    with pytest.raises(ValidationError):
        Settings(memory={"malloc_mmap_threshold": "lots"})


def test_a_childs_peak_is_its_own_not_its_parents():
    """Linux carries ru_maxrss over exec, so a child started by a process that once held
    400 MiB would read 400 MiB; peak_rss_lifetime reads the child's own high-water mark."""
    import subprocess
    import sys

    parent = (
        "import subprocess, sys\n"
        "import numpy as np\n"
        "held = np.ones(400 * 2**20, np.uint8)\n"
        "del held\n"
        "child = 'from leanspeech.memory import peak_rss_lifetime; print(peak_rss_lifetime())'\n"
        "print(subprocess.run([sys.executable, '-c', child], capture_output=True, text=True, check=True).stdout)\n"
    )
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, check=True, timeout=120)
    assert 0 < int(out.stdout.split()[0]) < 200 * 2**20


def test_a_spare_arena_is_one_more_than_the_limit_and_given_once(monkeypatch):
    """The thread a model loads in takes an arena of its own (``malloc.spare_arena``)."""
    from leanspeech.tuning import malloc as memory

    calls = []
    monkeypatch.setattr(memory, "_mallopt", lambda param, value: calls.append((param, value)) or True)
    monkeypatch.setattr(memory, "_arena_limit", 0)
    assert not memory.spare_arena()  # glibc's default: nothing to add to
    assert memory.limit_malloc_arenas(2)
    assert memory.spare_arena() and memory.spare_arena()
    assert calls == [(memory.M_ARENA_MAX, 2), (memory.M_ARENA_MAX, 3), (memory.M_ARENA_MAX, 3)]
