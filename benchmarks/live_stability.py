"""How often live transcription completes a wrong word, by tail margin.

Feeds ../shared/data/jfk.flac to a ``StreamingSession`` in random arrival patterns (chunks
of a random number of 100 ms frames, one decode per arrival, as a server that falls behind
sees them) and counts the runs whose completed text differs from the reference from "ask
not" on. (Before completed segments were re-taken from the latest whole decode, a 0.8 s
margin gave 3 of 30 such runs with 0.1-0.3 s chunks; see the git history of the results.) No server, no
clock: the decode cadence is the only variable, so the counts are
reproducible (seeded). Usage:

    python benchmarks/live_stability.py --tails 0.8,1.2 --runs 30 --frames "1,1,2,3;10,20,30,50"
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import jiwer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from helpers import load_audio, normalized  # noqa: E402
from leanspeech.models.store import resolve_model  # noqa: E402
from leanspeech.streaming.options import LiveOptions  # noqa: E402
from leanspeech.streaming.session import StreamingSession  # noqa: E402
from leanspeech.stt.ct2_engine import CT2Engine  # noqa: E402
from leanspeech.stt.decode_loop import DirectDecoder, decode_windows  # noqa: E402
from leanspeech.stt.windows import Window  # noqa: E402

REFERENCE = "ask not what your country can do for you ask what you can do for your country"


def decode(engine, window, options):
    return decode_windows(engine, [Window.of(window.audio)], options, DirectDecoder(engine)).per_window[0]


def one_run(engine, audio, seed: int, frames: list[int], tail: float) -> str:
    rng = random.Random(seed)
    session = StreamingSession(LiveOptions())
    session.tail_s = tail
    options = session.options.transcribe_options().with_(language="en")
    i = 0
    while i < len(audio):
        k = 1600 * rng.choice(frames)
        session.feed(audio[i : i + k])
        i += k
        if (window := session.next_window(False)) is not None:
            session.apply(window, decode(engine, window, options))
    while (window := session.next_window(True)) is not None:
        session.apply(window, decode(engine, window, options))
    session.finish()
    return normalized(" ".join(s.text.strip() for s in session.segments()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", type=Path, default=HERE.parent.parent / "shared" / "data" / "jfk.flac")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--tails", default="0.8,1.2")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument(
        "--frames",
        default="1,1,2,3;10,20,30,50",
        help="arrival patterns (';'-separated), each the sizes to draw from, in 100 ms frames",
    )
    parser.add_argument("--output", type=Path, default=HERE / "results" / "live_stability.json")
    args = parser.parse_args()

    engine = CT2Engine.load(resolve_model(args.model, offline=True), precision=args.precision, cpu_threads=2)
    audio = load_audio(args.audio)
    rows = []
    for pattern, tail in ((p, float(t)) for p in args.frames.split(";") for t in args.tails.split(",")):
        frames = [int(f) for f in pattern.split(",")]
        started, wrong, examples = time.time(), 0, []
        for seed in range(args.runs):
            text = one_run(engine, audio, seed, frames, tail)
            hyp = text[text.find("ask") :] if "ask" in text else text
            if jiwer.wer(REFERENCE, hyp) > 0:
                wrong += 1
                examples.append(text)
        rows.append(
            {
                "frames": frames,
                "tail_s": tail,
                "runs": args.runs,
                "runs_with_a_wrong_word": wrong,
                "examples": examples[:5],
                "seconds": round(time.time() - started, 1),
            }
        )
        print(
            f"frames {pattern}, tail {tail:.1f} s: {wrong} of {args.runs} runs with a wrong committed word", flush=True
        )
    result = {"model": args.model, "precision": args.precision, "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
