"""``leanspeech batch --ray`` on a simulated two-node cluster (``ray.cluster_utils.Cluster``,
one CPU each, on loopback): 20 files (JFK, Piper speech, a corrupt and an empty file), two
worker actors, results as the in-process job writes them, a rerun that writes nothing, and
a worker killed mid-job that loses nothing."""

import json
import os
import shutil
import signal
import threading
import time

import pytest

from helpers import heard_jfk, normalized, wer

pytestmark = [pytest.mark.model, pytest.mark.ray, pytest.mark.slow]
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    ray.init(address=c.address, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def files(tmp_path_factory, jfk):
    from leanspeech.measure.corpus import sentences_clip

    src = tmp_path_factory.mktemp("batch-in")
    refs = {}
    shutil.copy(jfk, src / "jfk.flac")
    refs["jfk"] = None
    for i in range(17):
        path, text = sentences_clip(count=1 + i % 3, start=2 * i, pause=0.4)
        shutil.copy(path, src / f"clip{i:02d}.wav")
        refs[f"clip{i:02d}"] = text
    (src / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(300))
    (src / "empty.wav").write_bytes(b"")
    return src, refs


def _job(src, out, **kw):
    from leanspeech.batch.job import collect, order_formats, plan_items
    from leanspeech.stt.options import TranscribeOptions

    files, base = collect(str(src))
    items = plan_items(files, base, out)
    kwargs = {"model": "tiny.en", "precision": "int8", "cpu_threads": 1, "offline": True,
              **TranscribeOptions(batch_size=8).as_dict()}
    return items, order_formats(["json", "txt"]), kwargs


def test_two_nodes_two_workers_then_a_rerun(cluster, files, tmp_path):
    from leanspeech.batch.job import run_batch
    from leanspeech.batch.on_ray import run_ray_batch
    from leanspeech.stt import Transcriber

    src, refs = files
    items, formats, kwargs = _job(src, tmp_path / "ray")
    assert len(items) == 20
    summary = run_ray_batch(items, formats, kwargs, workers=2)
    assert len(summary.written) == 18 and summary.skipped == []
    assert sorted(p.name for p, _ in summary.failed) == ["broken.wav", "empty.wav"]
    assert all(err for _, err in summary.failed)
    nodes = {row["NodeID"] for row in ray.nodes() if row["Alive"]}
    assert len(nodes) == 2

    local_items, _, _ = _job(src, tmp_path / "local")
    with Transcriber(**kwargs) as t:
        local = run_batch(t, local_items, formats)
    assert len(local.written) == 18
    same, refs_seen, hyps = 0, [], []
    for stem, ref in refs.items():
        ray_text = json.loads((tmp_path / "ray" / f"{stem}.json").read_text())["text"]
        local_text = json.loads((tmp_path / "local" / f"{stem}.json").read_text())["text"]
        same += normalized(ray_text) == normalized(local_text)
        # packed with other neighbours in a Ray batch than in-process, a clip can differ by a word
        assert wer(local_text, ray_text) <= 0.25, (stem, ray_text, local_text)
        if ref is None:
            assert heard_jfk(ray_text), ray_text
        else:
            refs_seen.append(ref)
            hyps.append(ray_text)
    assert wer(" ".join(refs_seen), " ".join(hyps)) < 0.1  # tiny.en on Piper speech: a few percent
    assert same >= 10, f"only {same} of 18 texts are the same on Ray and in-process"

    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").rglob("*") if p.is_file()}
    again = run_ray_batch(items, formats, kwargs, workers=2)
    assert again.written == [] and len(again.skipped) == 18 and len(again.failed) == 2
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def _worker_pids() -> list[int]:
    """Ray Data's worker actors, by their process title (``ray::MapWorker(...)``)."""
    import psutil

    pids = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        line = " ".join(p.info["cmdline"] or [])
        if line.startswith("ray::MapWorker") or "ray::MapWorker" in line:
            pids.append(p.info["pid"])
    return pids


def test_a_worker_killed_mid_job_loses_nothing(cluster, files, tmp_path):
    from leanspeech.batch.on_ray import run_ray_batch

    src, _ = files
    items, formats, kwargs = _job(src, tmp_path / "out")
    killed = []

    def kill_one_worker():
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            workers = _worker_pids()
            # once the first results are on disk, the pool is busy: kill one worker's process
            if workers and any((tmp_path / "out").glob("*.json")):
                os.kill(workers[0], signal.SIGKILL)
                killed.append(workers[0])
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    summary = run_ray_batch(items, formats, kwargs, workers=2)
    killer.join(5)
    assert killed, "no worker was killed (the job ended first?)"
    assert len(summary.written) == 18 and len(summary.failed) == 2
    written = sorted(p.stem for p in (tmp_path / "out").glob("*.json"))
    assert len(written) == 18 and not list((tmp_path / "out").glob(".*.partial"))


def test_ray_workers_diarize(cluster, conversation, jfk, tmp_path):
    """``batch --ray --diarize``: the workers build their transcribers with the speaker keywords."""
    from leanspeech.batch.on_ray import run_ray_batch

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(conversation.path, src / "talk.wav")
    shutil.copy(jfk, src / "jfk.flac")
    items, formats, kwargs = _job(src, tmp_path / "out")
    summary = run_ray_batch(items, formats, {**kwargs, "diarize": True, "max_speakers": 4}, workers=2)
    assert len(summary.written) == 2 and summary.failed == []
    talk = json.loads((tmp_path / "out" / "talk.json").read_text())
    assert len({s["speaker"] for s in talk["segments"]}) >= 3
    assert {s["speaker"] for s in json.loads((tmp_path / "out" / "jfk.json").read_text())["segments"]} == {"A"}
