"""``leanspeech transcribe`` on a long file: the transcript grows segment by segment (in its
``.NAME.*.partial`` file) while the file is still being decoded, and the target appears only
whole (``atomic``)."""

import os
import subprocess
import sys
import time

import pytest

from helpers import wer

pytestmark = pytest.mark.model


def test_transcript_is_written_as_segments_complete(tmp_path):
    from leanspeech.measure.corpus import long_form

    audio, reference = long_form(3.0, seed=7)
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LEANSPEECH_STT__BLOCK_SECONDS": "60"}
    proc = subprocess.Popen([sys.executable, "-m", "leanspeech", "transcribe", str(audio), "-q", "-f", "srt",
                             "-o", str(out), "--threads", "2"], env=env, stderr=subprocess.PIPE, text=True)
    target = out / f"{audio.stem}.srt"
    sizes, early = [], []
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        sizes.extend(p.stat().st_size for p in out.glob(f".{target.name}.*.partial") if p.exists())
        if target.exists() and proc.poll() is None:
            early.append(target.stat().st_size)
        time.sleep(0.05)
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    final = target.read_text(encoding="utf-8")
    growing = sorted({s for s in sizes if 0 < s < len(final.encode())})
    assert growing, "the transcript appeared only when the whole file was done"
    assert all(s == len(final.encode()) for s in early), "the target was seen half-written"
    assert not list(out.glob("*.partial")) and not list(out.glob(".*.partial"))
    cues = final.strip().split("\n\n")
    assert [c.split("\n")[0] for c in cues] == [str(i) for i in range(1, len(cues) + 1)]
    assert wer(reference, " ".join(c.split("\n", 2)[2] for c in cues)) < 0.15
