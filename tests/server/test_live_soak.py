"""Soak: ten minutes of speech through one live session, faster than real time."""

import statistics
import time

import pytest

from helpers import live_session, load_audio, pcm, rss_of, wer

pytestmark = [pytest.mark.model, pytest.mark.live, pytest.mark.slow, pytest.mark.timeout(900)]

MINUTES = 10
SPEED = 5.0  # times real time
PAUSE_S = 1.2


@pytest.fixture(scope="module")
def soak_audio():
    """Corpus sentences, one utterance each, with a pause after every one, for 10 minutes."""
    from leanspeech.measure.corpus import SENTENCES, build

    count = int(MINUTES * 60 / 3.6) + 1  # a sentence plus its pause is ~3.9 s
    sentences = [SENTENCES[i % len(SENTENCES)] for i in range(count)]
    wav, _ = build(sentences, [PAUSE_S] * count, "soak")
    audio = load_audio(wav)
    assert audio.shape[0] >= MINUTES * 60 * 16000
    return audio, count, " ".join(sentences)


def test_ten_minutes_bounded_memory_and_one_segment_per_utterance(make_server, soak_audio):
    audio, utterances, reference = soak_audio
    srv = make_server()
    step = 1600
    frames = [pcm(audio[i : i + step], "float32") for i in range(0, audio.shape[0], step)]
    one_minute = 60 * 16000 // step
    readings: list[int] = []

    def quiet_rss() -> int:
        """RSS with no decode in flight: the client pauses (as a speaker does) until the
        server has caught up and handed freed heap pages back (it trims 2 s after work
        stops), then the lowest of several readings. A reading taken during a decode swings
        with the activations in use at that instant."""
        time.sleep(3.5)
        samples = []
        for _ in range(10):
            samples.append(rss_of(srv.proc.pid))
            time.sleep(0.1)
        return min(samples)

    def frames_with_readings():
        # a reading after each of the first three minutes and each of the last three (what the
        # bound compares), not in between: each costs a pause of the stream
        compared = {1, 2, 3, MINUTES - 2, MINUTES - 1}
        for i, frame in enumerate(frames):
            if i and i % one_minute == 0 and i // one_minute in compared:
                readings.append(quiet_rss())
            yield frame
        readings.append(quiet_rss())

    run = live_session(srv.ws_url, frames=frames_with_readings(), speed=SPEED, timeout=300)
    assert run.error is None and run.close_code == 1000, (run.close_code, run.close_reason)
    # A reading moves by a few MiB with where the last buffers landed in the heap, so the
    # first three minutes are compared with the last three, each by its median: a leak
    # grows with time, the noise does not.
    early, late = statistics.median(readings[:3]), statistics.median(readings[-3:])
    growth = (late - early) / early
    print(
        f"quiet RSS at minutes 1-3 and {MINUTES - 2}-{MINUTES} (MiB): "
        f"{', '.join(f'{r / 2**20:.1f}' for r in readings)}; "
        f"first three {early / 2**20:.1f}, last three {late / 2**20:.1f} ({growth:+.1%}); "
        f"{run.completed_count()} segments for {utterances} utterances"
    )
    assert len(readings) == 6
    # 15%: quiet readings on a 2-core VM swing by +-8 MiB around ~225 MiB (one run here went
    # 220.7 ... 237.5, +6.1%, the next +1.8%); the creep this test was written for was
    # ~6 MB a minute, +25% over the ten minutes; CI's slower CPU once read +10.0% on the
    # way (212 ... 245 ... 226 MiB), so the bound sits between the noise and that creep
    assert growth < 0.15
    # Nothing lost: the completed text is the whole speech (tiny.en on Piper: a few percent).
    # About one completed segment per utterance: a sentence the model splits or joins moves the
    # count by one, and a CPU that falls behind at 5x real time joins more (163 and 155 of 167
    # on slower CPUs here, 166-167 before, 143 and 115 on CI's CPU under the full suite), so
    # the count is bounded loosely and the text is what must hold. WER 0.156 and 0.186 on
    # this 2-core VM on a slow day (words dropped where a lagging client's utterances join);
    # a broken live pipeline loses most of the text, so 0.25 still tells them apart.
    assert wer(reference, run.completed_text()) < 0.25, run.completed_text()[:500]
    assert utterances // 2 <= run.completed_count() <= utterances + max(3, utterances // 12)
