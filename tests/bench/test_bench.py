"""`leanspeech bench` end to end (offline, CPU, real models, fresh processes)."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = [pytest.mark.model, pytest.mark.slow]


def bench(*args, env=None, timeout=900):
    full = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "leanspeech", "bench", *args], capture_output=True, text=True,
                          env=full, timeout=timeout)


def test_normalization_makes_equivalent_text_score_zero():
    from leanspeech.measure.scoring import agreement, cer, wer

    assert wer("Mr. Smith paid $20", "mister smith paid twenty dollars") == 0.0
    assert cer("Hello, World!", "hello world") == 0.0
    assert wer("the cat sat", "the dog sat") == pytest.approx(1 / 3)
    assert agreement("a b c d", "a b c d") == 1.0


@pytest.fixture(scope="module")
def quick(tmp_path_factory, jfk):
    out = tmp_path_factory.mktemp("bench")
    r = bench("--suite", "quick", "--models", "tiny.en", "--precisions", "int8,float32,float16", "--batch-sizes", "8",
              "--beam-sizes", "1", "--anchors", "faster-whisper,openai-whisper", "--threads", "2", "--out", str(out),
              "--markdown", env={"LEANSPEECH_JFK": str(jfk)})
    assert r.returncode == 0, r.stderr
    return out, json.loads((out / "results.json").read_text()), r


def test_quick_suite_report(quick, jfk):
    out, report, proc = quick
    machine = report["machine"]
    assert machine["cores"] >= 1 and machine["ram"] > 0 and machine["versions"]["ctranslate2"]
    ok = [r for r in report["rows"] if r["ok"]]
    mine = [r for r in ok if not r["anchor_row"]]
    assert {r["precision"] for r in mine} == {"int8", "float32"}
    for r in ok:
        for key in ("load_s", "disk_bytes", "peak_rss", "wall_s", "rtf", "audio_s"):
            assert r[key] > 0, key
        assert 0 <= r["wer"] < 0.2 and 0 <= r["cer"] < 0.2
        assert 0 <= r["agreement"] <= 1 and r["reference_config"]
        jfk_text = next(f["text"] for f in r["files"] if f["file"] == str(jfk))
        from leanspeech.measure.scoring import wer

        assert wer("And so my fellow Americans, ask not what your country can do for you, "
                   "ask what you can do for your country.", jfk_text) < 0.2
    # ratios to the faster-whisper anchor, and the top-precision comparison
    int8 = next(r for r in mine if r["precision"] == "int8")
    assert (
        int8["speed_vs_anchor"] > 0
        and int8["peak_rss_vs_anchor"] > 0
        and int8["reference_config"].endswith("float32 batch 8 beam 1")
    )
    assert any(r["engine"] == "faster-whisper" for r in ok) and any(r["engine"] == "faster-whisper-batched" for r in ok)
    # the openai-whisper anchor ran on the exported checkpoint (openai-whisper is in the test extra)
    ow = [r for r in ok if r["engine"] == "openai-whisper"]
    assert ow and ow[0]["anchor_row"] and 0 <= ow[0]["wer"] < 0.2, ow
    assert "| configuration |" in proc.stdout and (out / "results.csv").read_text().startswith("label,")


def test_failing_configuration_is_recorded_and_the_rest_go_on(quick):
    _, report, _ = quick
    failed = [r for r in report["rows"] if not r["ok"]]
    assert failed and all(r["precision"] == "float16" for r in failed)
    assert all("float16" in r["error"] for r in failed)
    assert sum(r["ok"] for r in report["rows"]) >= 4


def test_charts_are_images(quick):
    out, report, _ = quick
    for name in ("memory_vs_wer.png", "speed_vs_memory.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_is_refused_before_work(tmp_path, jfk):
    r = bench("--audio", str(tmp_path / "missing.wav"))
    assert r.returncode == 2 and "no such file" in r.stderr
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all" * 100)
    r = bench("--audio", str(bad))
    assert r.returncode == 2 and "not decodable" in r.stderr
    tsv = tmp_path / "refs.tsv"
    tsv.write_text("other.flac\tsome text\n")
    r = bench("--audio", str(jfk), "--refs", str(tsv))
    assert r.returncode == 2 and "matches no audio file" in r.stderr
    r = bench("--suite", "quick", "--models", "huge-v9")
    assert r.returncode == 2 and "huge-v9" in r.stderr
    r = bench("--suite", "quick", "--precisions", "int4")
    assert r.returncode == 2 and "int4" in r.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = bench("--suite", "quick", "--out", str(blocker / "out"))
    assert r.returncode == 2 and "not writable" in r.stderr
    assert "Traceback" not in r.stderr


def _interrupted_bench(out):
    """Start ``leanspeech bench`` on the long suite, Ctrl-C it while a configuration's child
    runs; (the bench's process, the children seen, its stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "leanspeech", "bench", "--suite", "long", "--precisions", "float32,int8",
         "--batch-sizes", "0", "--threads", "2", "--out", str(out)],
        env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # as from a terminal: a shell's background job (a CI runner's, say) ignores SIGINT, and a
        # child inherits that, so Python would never see the Ctrl-C this test sends
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    parent = psutil.Process(proc.pid)
    deadline = time.time() + 300
    children: list[psutil.Process] = []
    while time.time() < deadline and not children:
        children = [c for c in parent.children(recursive=True) if "bench_child" in " ".join(c.cmdline())]
        time.sleep(0.2)
    assert children, "no configuration process started"
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc, children, err


def test_ctrl_c_leaves_no_child_processes(tmp_path):
    out = tmp_path / "interrupted"
    proc, children, err = _interrupted_bench(out)
    assert proc.returncode == 130, (proc.returncode, err[-2000:])
    time.sleep(0.5)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    report = json.loads((out / "results.json").read_text())
    assert report["interrupted"] is True
