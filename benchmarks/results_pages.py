#!/usr/bin/env python
"""The measured results, written from the committed result files: one docs page per study
(``docs/benchmarks/SLUG.md``) and the README's headline table.

    python benchmarks/results_pages.py           # write every page and the headline table
    python benchmarks/results_pages.py --check   # exit 1 if a page or the table is out of date

On a page, what stands between ``<!-- generated -->`` and ``<!-- /generated -->`` is made
here; what follows it is the page's own prose, kept as written. Charts a study shows are
copied next to its page (``docs/benchmarks/img/``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"
ROOT = HERE.parent
README = ROOT / "README.md"
PAGES = ROOT / "docs" / "benchmarks"
START, END = "<!-- generated -->", "<!-- /generated -->"
HEADLINE = ("<!-- headline -->", "<!-- /headline -->")


def load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def machine(report: dict) -> str:
    m = report["machine"]
    versions = m["versions"]
    return (f"{m['cpu']}, {m['cores']} cores, {m['ram'] / 2**30:.0f} GiB RAM; "
            f"ctranslate2 {versions.get('ctranslate2')}, faster-whisper {versions.get('faster-whisper')}")


def two_runs(stem: str) -> list[dict]:
    """``results/STEM.json`` and ``results/STEM_run2.json``, those that exist."""
    return [r for r in (load(f"{stem}.json"), load(f"{stem}_run2.json")) if r]


def two_run_section(stem: str, heading: str, intro: Callable[[list[dict]], str]) -> str | None:
    """A section of two runs of one benchmark: the heading, ``intro(runs)``, then each run's own
    markdown table; None while ``results/STEM.json`` is missing."""
    runs = two_runs(stem)
    if not runs:
        return None
    return "\n".join([f"### {heading}\n", intro(runs) + "\n"]
                     + [f"Run {i}:\n\n{rep['markdown']}\n" for i, rep in enumerate(runs, 1)])


def machine_isa(report: dict) -> str:
    return f"{machine(report)} (ISA: {', '.join(report['machine']['isa'])})"


def precision_table() -> str:
    rows = [
        "| audio | precision | RTF | x real time | peak RSS MiB | WER % | result file |",
        "|---|---|---|---|---|---|---|",
    ]
    for audio, files in (
        ("jfk.flac (11 s)", ("jfk_cpu_int8.json", "jfk_cpu_float32.json")),
        ("5-min Piper speech", ("longform_cpu.json", "longform_cpu_float32.json")),
    ):
        for name in files:
            report = load(name)
            if not report:
                continue
            row = next(r for r in report["rows"] if r["name"].startswith("leanspeech batched"))
            rows.append(
                f"| {audio} | {report['precision']} | {row['rtf']:.4f} | {1 / row['rtf']:.0f} | "
                f"{row['peak_rss'] / 2**20:.0f} | {row['wer'] * 100:.2f} | `benchmarks/results/{name}` |"
            )
    return "\n".join(rows)


def live_table(reports: list[dict], column: str | None, labels: list[str] | None = None) -> str:
    """One row per client count (and server or protocol, ``column``) of each live-latency run,
    labelled 1, 2, ... or by ``labels``."""
    f = lambda v, scale=1.0: "-" if v is None else f"{v * scale:.2f}"  # noqa: E731
    named = f" {column} |" if column else ""
    lines = [f"| run |{named} clients | end of speech -> completed, p50 / p95 (s) | first partial, p50 / p95 (s) "
             "| WER % | utterances completed |", "|---|" + ("---|" if column else "") + "---|---|---|---|---|"]
    for i, rep in enumerate(reports):
        label = labels[i] if labels else str(i + 1)
        for r in rep["rows"]:
            cell = f" {r[column]} |" if column else ""
            lines.append(f"| {label} |{cell} {r['clients']} | {f(r['completion_p50_s'])} / "
                         f"{f(r['completion_p95_s'])} | {f(r['first_partial_p50_s'])} / {f(r['first_partial_p95_s'])} "
                         f"| {f(r['wer'], 100)} | {r['utterances_completed']}/{r['utterances']} |")
    return "\n".join(lines)


#: The live runs before and after the shorter encoder input, in the table's order.
LIVE_PADDING_RUNS = (("before (30 s encoder input)", "live_latency_before_pad5.json"),
                     ("1", "live_latency_pad5_run1.json"), ("2", "live_latency_pad5_run2.json"),
                     ("1", "live_latency_pad5_8.json"))
#: The live runs after a late pause closes the phrase before it: 1 and 4 clients, then 8.
LIVE_LATE_PAUSE_RUNS = (("1", "live_latency_latepause_run1.json"), ("2", "live_latency_latepause_run2.json"),
                        ("1", "live_latency_latepause_8_run1.json"), ("2", "live_latency_latepause_8_run2.json"))
#: The same replay on a CPU with AVX-512 and VNNI: 1, 4 and 8 clients twice, twice again before a
#: squeezed last word was kept, then the code of the late-pause runs (commit b92337f) with 4 clients.
LIVE_AVX512_RUNS = (("1", "live_latency_avx512_run1.json"), ("2", "live_latency_avx512_run2.json"),
                    ("before, 1", "live_latency_avx512_before_run1.json"),
                    ("before, 2", "live_latency_avx512_before_run2.json"),
                    ("b92337f", "live_latency_avx512_b92337f.json"))
#: On an AVX-512/BF16 EPYC (faster than the one above): the code before the batcher's encode wait,
#: the passing-thread load and one BLAS thread (commit eae9ab6, 4 and 8 clients), then after them
#: (1, 4 and 8 clients twice), then after them with OpenBLAS's own threads (4 and 8 clients).
LIVE_PROCESS_RUNS = (("before (eae9ab6)", "live_latency_before_eae9ab6.json"),
                     ("after, 1", "live_latency_passing_run1.json"), ("after, 2", "live_latency_passing_run2.json"),
                     ("after, BLAS threads 0", "live_latency_passing_blas0.json"))
#: README sections whose table is generated here and whose prose is the README's own.
LIVE_LABELLED_SECTIONS = (
    ("Live decodes with a shorter encoder input (`benchmarks/live_latency.py`, this CPU)", LIVE_PADDING_RUNS),
    ("A pause heard late still closes the phrase before it (`benchmarks/live_latency.py`)", LIVE_LATE_PAUSE_RUNS),
    ("Four live clients on a CPU with AVX-512 (`benchmarks/live_latency.py`)", LIVE_AVX512_RUNS),
    ("Live clients with the encode wait, the passing-thread load and one BLAS thread "
     "(`benchmarks/live_latency.py`)", LIVE_PROCESS_RUNS),
)


def labelled_live_table(runs: tuple[tuple[str, str], ...]) -> str | None:
    """One row per client count of each (label, results file), labelled."""
    loaded = [(label, load(name)) for label, name in runs]
    if not all(rep for _, rep in loaded):
        return None
    return live_table([rep for _, rep in loaded], None, [label for label, _ in loaded])



def many_files_section() -> str | None:
    """``benchmarks/many_files.py``: two runs, one table each."""
    runs = [r for r in (load("many_files_cpu.json"), load("many_files_cpu_run2.json")) if r]
    if not runs:
        return None
    first = runs[0]
    out = ["### Many short files, windows of several files per decode (`benchmarks/many_files.py`)\n",
           f"{first['files']} clips of {min(first['lengths_s']):.0f}-{max(first['lengths_s']):.0f} s (JFK and Piper "
           f"speech), {first['model']} {first['precision']}, beam {first['beam_size']}, {first['threads']} threads, "
           f"model load excluded on every side, median of {first['repeat']}; the anchor is faster-whisper's "
           f"sequential loop in the same run. Machine: {machine(first)}. Command: `python benchmarks/many_files.py` "
           "(results: `benchmarks/results/many_files_cpu.json`, `many_files_cpu_run2.json`).\n"]
    f = lambda r: (f"| {r['name']} | {r['wall_s']:.2f} | {r['files_per_min']:.0f} | "  # noqa: E731
                   f"{r['peak_rss'] / 2**20:.0f} | {r['wer'] * 100:.2f} | {r['speedup_vs_anchor']:.2f}x | "
                   f"{r['peak_rss_vs_anchor']:.2f}x |")
    for i, rep in enumerate(runs, 1):
        out.append(f"Run {i}:\n\n| configuration | wall s | files/min | peak RSS MiB | WER % | speed vs anchor "
                   "| peak RSS vs anchor |\n|---|---|---|---|---|---|---|\n" + "\n".join(f(r) for r in rep["rows"])
                   + "\n")
    return "\n".join(out)


def encoder_padding_section() -> str | None:
    """``benchmarks/encoder_padding.py``: WER per padding (deterministic) and both runs' times."""
    runs = [r for r in (load("encoder_padding_cpu.json"), load("encoder_padding_cpu_run2.json")) if r]
    if not runs:
        return None
    first = runs[0]
    kinds = list(first["kinds"])
    head = ("| encoder input | WER % | " + " | ".join(f"{k} ({first['kinds'][k]} clips)" for k in kinds)
            + " | clips worse than 30 s | " + " | ".join(f"run {i} time s (speed)" for i in range(1, len(runs) + 1))
            + " |")
    lines = [head, "|" + "---|" * (3 + len(kinds) + len(runs))]
    for j, r in enumerate(first["rows"]):
        times = " | ".join(f"{rep['rows'][j]['seconds']:.1f} ({rep['rows'][j]['speedup_vs_anchor']:.2f}x)"
                           for rep in runs)
        both = lambda get, j=j: " / ".join(dict.fromkeys(f"{get(rep['rows'][j]) * 100:.2f}" for rep in runs))  # noqa: E731
        lines.append(f"| {r['label']} | {both(lambda x: x['wer'])} | "
                     + " | ".join(both(lambda x, k=k: x["wer_by_kind"][k]) for k in kinds)
                     + f" | {r['clips_worse_than_anchor']} | {times} |")
    return ("### A shorter encoder input for short windows (`benchmarks/encoder_padding.py`)\n\n"
            f"{first['clips']} clips of {min(first['lengths_s']):.1f}-{max(first['lengths_s']):.1f} s: Piper, "
            "espeak-ng's English voices, the real JFK recording and its parts, clean and with white noise at 20 and "
            f"10 dB SNR; {first['model']} {first['precision']}, beam {first['beam_size']}, {first['threads']} "
            f"threads, each clip transcribed alone. Machine: {machine(first)}. Command: "
            "`python benchmarks/encoder_padding.py` (results: `benchmarks/results/encoder_padding_cpu.json`, "
            "`encoder_padding_cpu_run2.json`; a WER shown as a / b differs between the two runs: with no padding a "
            "few clips flip between a right answer and a failure).\n\n"
            + "\n".join(lines) + "\n")


def packing_section() -> str | None:
    """``benchmarks/packing.py``: WER per gap and both runs' times."""
    runs = [r for r in (load("packing_cpu.json"), load("packing_cpu_run2.json")) if r]
    if not runs:
        return None
    first = runs[0]
    kinds = list(first["kinds"])
    head = ("| windows | WER % | " + " | ".join(f"{k} ({first['kinds'][k]} clips)" for k in kinds)
            + " | clips worse / better | parts decoded again | "
            + " | ".join(f"run {i} time s (speed)" for i in range(1, len(runs) + 1)) + " |")
    lines = [head, "|" + "---|" * (5 + len(kinds) + len(runs))]
    for j, r in enumerate(first["rows"]):
        times = " | ".join(f"{rep['rows'][j]['seconds']:.1f} ({rep['rows'][j]['speedup_vs_anchor']:.2f}x)"
                           for rep in runs)
        both = lambda get, j=j: " / ".join(dict.fromkeys(f"{get(rep['rows'][j]) * 100:.2f}" for rep in runs))  # noqa: E731
        again = " / ".join(dict.fromkeys(str(rep["rows"][j]["parts_decoded_again"]) for rep in runs))
        lines.append(f"| {r['label']} | {both(lambda x: x['wer'])} | "
                     + " | ".join(both(lambda x, k=k: x["wer_by_kind"][k]) for k in kinds)
                     + f" | {r['clips_worse_than_anchor']} / {r['clips_better_than_anchor']} | {again} | {times} |")
    return ("### Short files packed into shared 30 s windows (`benchmarks/packing.py`)\n\n"
            f"The same {first['clips']} clips as the encoder-input study below, in one fixed shuffled order, "
            f"through `transcribe_many` (batch 8); {first['model']} {first['precision']}, beam {first['beam_size']}, "
            f"{first['threads']} threads. Machine: {machine(first)}. Command: `python benchmarks/packing.py` "
            "(results: `benchmarks/results/packing_cpu.json`, `packing_cpu_run2.json`; a figure shown as a / b "
            "differs between the two runs).\n\n" + "\n".join(lines) + "\n")


#: ``benchmarks/longform.py --lengths``: the runs of the README's long-files table, and the chart's
LONG_FILES = "longform_lengths_release_cpu"
CHART_RUNS = tuple(f"benchmarks/results/{stem}.json" for stem in (LONG_FILES, f"{LONG_FILES}_run2",
                                                                   "longform_lengths_cpu"))


def long_files_section() -> str | None:
    """``benchmarks/longform.py --lengths``: both kinds of audio, 3 minutes to 2 hours, both
    runs side by side, and the chart."""
    runs = two_runs(LONG_FILES)
    if not runs:
        return None
    first = runs[0]
    n = len(runs)
    lines = ["| audio | length | configuration | " + " | ".join(
        f"run {i}: wall s (x real time)" for i in range(1, n + 1)) + " | peak RSS MiB | WER % | speed vs fw batched "
        "| peak vs fw sequential | peak vs its 3-min peak | time per audio s vs its 3-min |",
        "|" + "---|" * (9 + n)]

    def both(rows: list[dict], key: str, fmt: str) -> str:
        values = [format(r[key], fmt) for r in rows if key in r]
        return " / ".join(dict.fromkeys(values)) if values else "-"

    def key(r: dict) -> tuple:
        return r["kind"], round(r["minutes"]), r["config"]

    for r in sorted(first["rows"], key=lambda r: (r["kind"], r["minutes"])):
        rows = [x for rep in runs for x in rep["rows"] if key(x) == key(r)]
        walls = " | ".join(next((f"{x['wall_s']:.1f} ({1 / x['rtf']:.0f})" for x in rep["rows"] if key(x) == key(r)),
                                "-") for rep in runs)
        peaks = " / ".join(dict.fromkeys(f"{x['peak_rss'] / 2**20:.0f}" for x in rows))
        wers = " / ".join(dict.fromkeys(f"{x['wer'] * 100:.2f}" for x in rows))
        lines.append(f"| {r['kind']} | {r['minutes']:.0f} min | {r['name']} | {walls} | {peaks} | {wers} | "
                     f"{both(rows, 'speed_vs_fw-batched', '.2f')} | {both(rows, 'peak_vs_fw-seq', '.2f')} | "
                     f"{both(rows, 'peak_vs_shortest', '.2f')} | {both(rows, 'rtf_vs_shortest', '.2f')} |")
    return ("### Long files, 3 minutes to 2 hours (`benchmarks/longform.py --lengths`)\n\n"
            "Piper speech (continuous, and with 0.3-2.5 s pauses), 3 minutes repeated to each length at run time; "
            f"{first['model']} {first['precision']}, beam {first['beam_size']}, {first['threads']} threads; each "
            "cell a fresh process, peak RSS its own high-water mark (`VmHWM`, model load included; not "
            "`ru_maxrss`, which a child inherits from its parent); faster-whisper's modes as anchors in the same "
            "run at 3 minutes (at 2 hours they would take most of an hour here; an earlier run with them at 30 "
            "minutes is in the chart). "
            f"Machine: {machine_isa(first)}. Commands: "
            + ", then ".join(f"`{rep['command']}`" for rep in runs)
            + f" (results: `benchmarks/results/{LONG_FILES}.json`, `{LONG_FILES}_run2.json`; a / b: "
            "the two runs differ). "
            f"Chart: `python benchmarks/longform.py --chart {' '.join(CHART_RUNS)}`: the runs above, and before "
            "the heap trim (`DirectDecoder`), the run with faster-whisper at 30 minutes.\n\n" + "\n".join(lines)
            + "\n\n![peak RSS against audio length](benchmarks/longform_rss_cpu.png)\n")


def ray_batch_section() -> str | None:
    """``benchmarks/ray_batch.py``: two runs."""
    runs = [r for r in (load("ray_batch_cpu.json"), load("ray_batch_cpu_run2.json")) if r]
    if not runs:
        return None
    first = runs[0]
    out = ["### A batch job of 40 files, in-process and on Ray (`benchmarks/ray_batch.py`)\n",
           f"{first['files']} files ({first['audio_s'] / 60:.1f} min of Piper speech: 30 clips of 2-16 s, 10 of about "
           f"a minute), {first['model']} {first['precision']}, beam {first['beam_size']}; each job one command in a "
           "fresh process, its wall time everything a user waits for (start, model loads, Ray's start), its peak the "
           "largest sum of RSS over every process of the job (Ray's GCS, raylet and workers included). On these 2 "
           f"cores Ray's workers share the same cores: the ratios show Ray's overhead, not its scale. Machine: "
           f"{machine(first)}. Command: `python benchmarks/ray_batch.py` (results: "
           "`benchmarks/results/ray_batch_cpu.json`, `ray_batch_cpu_run2.json`).\n"]
    for i, rep in enumerate(runs, 1):
        lines = ["| job | wall s | files/min | peak RSS, all processes MiB | largest worker MiB | speed vs anchor "
                 "| peak vs anchor |", "|---|---|---|---|---|---|---|"]
        for r in rep["rows"]:
            worker = f"{r['peak_rss_worker'] / 2**20:.0f}" if r.get("peak_rss_worker") else "-"
            lines.append(f"| {r['name']} | {r['wall_s']:.1f} | {r['files_per_min']:.1f} | "
                         f"{r['peak_rss_all'] / 2**20:.0f} | {worker} | {r['speedup_vs_anchor']:.2f}x | "
                         f"{r['peak_vs_anchor']:.2f}x |")
        out.append(f"Run {i}:\n\n" + "\n".join(lines) + "\n")
    return "\n".join(out)


def server_peer_section() -> str | None:
    """``benchmarks/server_load.py`` with WhisperLive's server as the peer: two runs."""
    def intro(runs: list[dict]) -> str:
        first = runs[0]
        return (f"The same 8 clips of {min(first['clips_s']):.0f}-{max(first['clips_s']):.0f} s, "
                f"{first['requests_per_client']} requests per client per level, loopback; leanspeech (tiny.en int8, "
                f"beam 5, {first['threads']} threads) with batching off, on (the default) and on with requests packed "
                "(`LEANSPEECH_SERVER__PACK_REQUESTS=true`: \"Packing concurrent requests\" below), and WhisperLive "
                "0.10.0's own server with its OpenAI-compatible REST endpoint on the same bundled tiny.en "
                "(faster-whisper, int8, beam 5, no VAD, `OMP_NUM_THREADS=2`), each a fresh server in the same run, in "
                "that order. WhisperLive's endpoint runs each transcription inside its async handler, so its requests "
                f"go one at a time. Machine: {machine_isa(first)}. Command: `{first['command']}` (a second run: "
                "`server_peer_cpu_run2.json`).")

    return two_run_section("server_peer_cpu", "The server against WhisperLive's REST server "
                           "(`benchmarks/server_load.py`)", intro)


def server_pad5_section() -> str | None:
    """``benchmarks/server_load.py`` with the ``-pad5`` modes: two runs, the ranges in the intro."""
    def span(runs: list[dict], clients: set[int], a: str, b: str) -> str:
        values = [x["throughput"] / y["throughput"] for r in runs
                  for x, y in zip(r["modes"][a], r["modes"][b], strict=True) if x["clients"] in clients]
        return f"{min(values):.2f}-{max(values):.2f}x"

    def audio(runs: list[dict], mode: str) -> str:
        values = [row["throughput"] for r in runs for row in r["modes"][mode] if row["clients"] == 8]
        return f"{min(values):.1f}-{max(values):.1f}"

    def intro(runs: list[dict]) -> str:
        first = runs[0]
        wers = sorted({f"{row['wer'] * 100:.2f}%" for r in runs for rows in r["modes"].values() for row in rows})
        every, busy = {1, 4, 8}, {4, 8}
        return (
            "The clips, requests and server of the table above (tiny.en int8, beam 5, "
            f"{first['threads']} threads), batching off and on, each with Whisper's 30 s encoder input "
            "and with the window's audio plus 5 s (`LEANSPEECH_STT__ENCODER_PADDING=5`, rounded up to "
            "5 s; \"A shorter encoder input for short windows\" above), each a fresh server in the same "
            "run; the second run in the reverse order. The shorter input made batching on "
            f"{span(runs, every, 'on-pad5', 'on')} faster and batching off {span(runs, every, 'off-pad5', 'off')} "
            f"at 1-8 clients ({audio(runs, 'on-pad5')} against {audio(runs, 'on')} audio s/s at 8 clients), "
            f"WER {' / '.join(wers)} in every mode. The encoder on a padded window is most of a short "
            "request's cost, and it does not batch on a CPU: with it shortened both modes pay less for "
            "the same decodes, so batching's own gain at 4-8 clients is "
            f"{span(runs, busy, 'on-pad5', 'off-pad5')} (with 30 s inputs {span(runs, busy, 'on', 'off')}). "
            "It stays off by default (the corpus study above: 0.5 points better on this CPU, 0.05 worse "
            "on the first); for short requests on a CPU it is the largest throughput lever measured here. "
            f"Machine: {machine_isa(first)}. Command: `{first['command']}` (a second run, modes in the "
            "reverse order: `server_pad5_cpu_run2.json`).")

    return two_run_section("server_pad5_cpu", "The server with a shorter encoder input (`benchmarks/server_load.py`, "
                           "the `-pad5` modes)", intro)


def hostile_section() -> str | None:
    """``benchmarks/hostile.py``: two runs, the targets checked over both in the intro."""
    def intro(runs: list[dict]) -> str:
        first = runs[0]
        ratios, rates, peaks, bound = [], [], [], first["budget_bytes"] / 2**20 + first["margin_mib"]
        per_run: list[list[float]] = []
        for r in runs:
            per_run.append([])
            quiet, loud = r["phases"]["quiet"]["clients"], r["phases"]["hostile"]["clients"]
            for client, row in loud.items():
                rates.append(row["succeeded"] / row["requests"] if row["requests"] else 1.0)
                if row.get("p95_s") and quiet.get(client, {}).get("p95_s"):
                    ratios.append((client, row["p95_s"] / quiet[client]["p95_s"]))
                    per_run[-1].append(ratios[-1][1])
            peaks.append(max(p["peak_rss"] for p in r["phases"].values()) / 2**20)
        worst = max(ratios, key=lambda c: c[1])
        over = sorted({c for c, x in ratios if x > 1.5})
        return (
            f"One `leanspeech serve` ({first['model']} {first['precision']}, an API key, `MEMORY__BUDGET="
            f"{first['budget']}`, `SERVER__MAX_AUDIO_SECONDS=1800`, `LIVE__MAX_CLIENTS=6`, Wyoming on, the other "
            f"settings at their defaults), {first['phase_s']:g} s of legitimate traffic alone, then "
            f"{first['phase_s']:g} s of it beside every hostile client at once, each attack again every second "
            "(module docstring of `benchmarks/hostile.py`). Legitimate: REST transcriptions of JFK (a client "
            "that honours `Retry-After`), REST speech, one WhisperLive and one Realtime session streaming JFK "
            "and a second of silence at real-time pace, and a Wyoming satellite (an utterance a connection, at "
            "real-time pace). "
            f"Latency: the request's, a live segment's from the moment its last audio was sent, a Realtime item's "
            f"from `speech_stopped`, a Wyoming utterance's from `audio-stop`. Audio: {first['audio']}. Machine: "
            f"{machine_isa(first)}, the clients on the same 2 cores. Command: `{first['command']}` (a second run: "
            "`hostile_cpu_run2.json`).\n\n"
            f"Over both runs: **{min(rates) * 100:.0f}%** of legitimate requests succeeded under hostility (the "
            f"lowest client); peak RSS {min(peaks):.0f}-{max(peaks):.0f} MiB against the budget plus its margin, "
            f"{bound:.0f} MiB; tracebacks in the log: {sum(r['tracebacks'] for r in runs)}. p95 latency under "
            f"hostility is {min(x for _, x in ratios):.2f}-{max(x for _, x in ratios):.2f}x the quiet phase's (the "
            f"worst, {worst[0]}, {worst[1]:.2f}x; the worst of each run: "
            f"{', '.join(f'{max(per_run[i]):.2f}x' for i in range(len(runs)))})"
            + (f"; above the 1.5x target in some run: {', '.join(over)}. On 2 cores every hostile client that does "
               "real work (a commit loop's four items in flight, sessions that stream two seconds and vanish, "
               "uploads refused once their container is read, and the attacking clients themselves, which run on "
               "the same cores) takes CPU the legitimate clients share, and the quiet phase itself moved between "
               f"runs (compare its p50s): the ratio is noisy; the target held in {sum(max(r) <= 1.5 for r in per_run)} "
               f"run(s) of {len(runs)}." if over else
               ", within the 1.5x target.")
        )

    return two_run_section("hostile_cpu", "Legitimate clients beside hostile ones (`benchmarks/hostile.py`)", intro)


def load_thread_section() -> str | None:
    """``benchmarks/load_thread.py``: two runs."""
    def intro(runs: list[dict]) -> str:
        first = runs[0]
        return (f"faster-whisper's `WhisperModel` ({first['model']}, {first['precision']}, {first['threads']} "
                "threads) loaded in the main thread, as its documentation does (the anchor), and in a thread that "
                "ends with the load, as leanspeech loads every CTranslate2 model; each in a fresh process, "
                f"the best of {first['repeat']}. The generate rows decode the 8 clips of `server_load.py` (beam 5, "
                "no timestamps); the faster-whisper rows transcribe the 3 minutes of continuous speech of "
                f"`longform.py`. Machine: {machine_isa(first)}. Command: `{first['command']}` (a second run: "
                "`load_thread_cpu_run2.json`).")

    return two_run_section("load_thread_cpu", "Where a CTranslate2 model is loaded (`benchmarks/load_thread.py`)",
                           intro)


BLAS_RUNS = [(t, i) for i in (1, 2) for t in (0, 1)]


def setting_runs(pattern: str, keys: tuple[tuple[int, int], ...]) -> list[tuple[int, int, dict]]:
    """(setting, run, report) for each (setting, run) of ``keys`` whose ``results/PATTERN``
    (formatted with the setting and the run) exists."""
    loaded = [(value, i, load(pattern.format(value, i))) for value, i in keys]
    return [(value, i, r) for value, i, r in loaded if r]


def blas_threads_section() -> str | None:
    """``benchmarks/server_load.py`` with ``LEANSPEECH_STT__BLAS_THREADS`` 0 and 1, alternating."""
    runs = setting_runs("blas_threads/server_blas{}_run{}.json", BLAS_RUNS)
    if not runs:
        return None
    first = runs[0][2]
    lines = ["| run | BLAS threads | clients | batching off: audio s/s | p95 s | batching on: audio s/s | p95 s |",
             "|---|---|---|---|---|---|---|"]
    for t, i, rep in runs:
        label = "1 (the default)" if t == 1 else "0 (OpenBLAS's own: 2)"
        for off, on in zip(rep["modes"]["off"], rep["modes"]["on"], strict=True):
            lines.append(f"| {i} | {label} | {off['clients']} | {off['throughput']:.1f} | {off['p95_s']:.2f} | "
                         f"{on['throughput']:.1f} | {on['p95_s']:.2f} |")
    return ("### numpy's BLAS threads (`LEANSPEECH_STT__BLAS_THREADS`, `benchmarks/server_load.py`)\n\n"
            f"The server's clips, {first['requests_per_client']} requests per client, 1 and 8 clients, batching off "
            "and on; the two settings alternate, each a fresh server. Machine: "
            f"{machine(first)}. Command: `LEANSPEECH_STT__BLAS_THREADS=T python benchmarks/server_load.py --modes "
            "off,on --clients 1,8 --requests 4 --out benchmarks/results/blas_threads/server_blasT_runN.json`.\n\n"
            + "\n".join(lines))


def longform_3min_section() -> str | None:
    """``benchmarks/longform.py --lengths ... --tuned-anchors`` at 3 minutes: two runs."""
    def intro(runs: list[dict]) -> str:
        first = runs[0]
        return ("The 3-minute audio of the table above (continuous speech, and speech with pauses), tiny.en int8, "
                f"beam 5, {first['threads']} threads, each cell a fresh process, peak by `VmHWM`. The tuned anchors "
                "are faster-whisper's own modes with what leanspeech does to its process: the model loaded in a "
                "thread that ends with the load, numpy's BLAS on one thread. leanspeech trims the heap before each "
                "group of windows is encoded and decoded (`DirectDecoder`), lets a block's samples go once it is "
                "planned and a window's audio once it is encoded (`stt/blocks.py`), and finds its bundled model "
                "without importing huggingface_hub; before those, on this "
                "machine, its 3-minute peaks were 358-367 MiB (`longform_3min_trim_cpu.json` and `_run2`), and "
                "374-391 MiB before the trim (`longform_3min_cpu.json` and `_run2`). Machine: "
                f"{machine_isa(first)}. Commands: `{first['command']}`, then `{runs[-1]['command']}`.")

    return two_run_section("longform_3min_release_cpu", "Three minutes against faster-whisper, also set up as "
                           "leanspeech sets up its process (`benchmarks/longform.py --tuned-anchors`)", intro)


def setting_table(pattern: str, keys: tuple[tuple[int, int], ...], key: Callable[[dict], object], header: str,
                  line: Callable[[int, dict, list[dict], Callable[..., str]], str]) -> tuple[dict, str] | None:
    """A table of the runs of ``setting_runs(pattern, keys)``: None if there are none, else the
    first report and the markdown (``header``, then ``line(value, row, same, both)`` for each
    setting value, in the order it first ran, and each row of its first run whose ``key(row)``
    is not None; ``same``: that row in every run of the value; ``both(field, fmt, scale)``: the
    field's values over those runs, each once)."""
    runs = setting_runs(pattern, keys)
    if not runs:
        return None
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for value in dict.fromkeys(v for v, _, _ in runs):
        reps = [r for v, _, r in sorted(runs, key=lambda x: x[1]) if v == value]
        for row in reps[0]["rows"]:
            if key(row) is None:
                continue
            same = [x for rep in reps for x in rep["rows"] if key(x) == key(row)]

            def both(field: str, fmt: str, scale: float = 1.0, rows: list[dict] = same) -> str:
                return " / ".join(dict.fromkeys(format(x[field] * scale, fmt) for x in rows))

            lines.append(line(value, row, same, both))
    return runs[0][2], "\n".join(lines)


#: ``LEANSPEECH_STT__BATCH_SIZE=B benchmarks/longform.py``: (batch size, run) in the order they ran
BATCH_RUNS = ((8, 1), (3, 1), (2, 1), (2, 2), (3, 2), (8, 2))


def batch_size_section() -> str | None:
    """``benchmarks/longform.py --lengths`` at 3 minutes with each file batch size, alternating,
    faster-whisper's modes in every run: two runs each."""
    def line(size: int, row: dict, same: list[dict], both: Callable[..., str]) -> str:
        walls = " | ".join(f"{x['wall_s']:.2f}" for x in same)
        label = f"{size} (the default: cut to 4 by `BATCH_MEMORY`)" if size == 8 else str(size)
        return (f"| {label} | {row['kind']} | {walls} | {both('peak_rss', '.0f', 2**-20)} | "
                f"{both('wer', '.2f', 100)} | {both('speed_vs_fw-batched', '.2f')} | {both('peak_vs_fw-seq', '.2f')} |")

    table = setting_table("batch_size/longform_batch{}_run{}.json", BATCH_RUNS,
                          lambda x: x["kind"] if x["config"] == "ls-batched" else None,
                          "| batch size (windows per decode) | audio | run 1: wall s | run 2: wall s | peak RSS MiB | "
                          "WER % | speed vs fw batched | peak vs fw sequential |", line)
    if table is None:
        return None
    first, markdown = table
    return ("### Windows per decode of a file on this CPU (`LEANSPEECH_STT__BATCH_SIZE`, `benchmarks/longform.py`)\n\n"
            "The 3-minute audio of \"Long files, 3 minutes to 2 hours\" (tiny.en int8, beam 5, "
            f"{first['threads']} threads), each cell a fresh process, peak by `VmHWM`, faster-whisper's sequential "
            "and batched (batch 8) modes in every run as anchors; the sizes alternate (8, 3, 2, then 2, 3, 8). "
            "On this CPU the encoder is most of a window's time and does not batch; the decode of 2, 3 or 4 "
            "windows takes about the same time per window, and each window more in a decode adds its beams' "
            f"caches to the peak. Machine: {machine_isa(first)}. Command: `LEANSPEECH_STT__BATCH_SIZE=B python "
            "benchmarks/longform.py --lengths 'continuous=3 pauses=3' --anchors-up-to 3 --out "
            "benchmarks/results/batch_size/longform_batchB_runN.json`.\n\n" + markdown)


#: ``LEANSPEECH_STT__BLOCK_SECONDS=B benchmarks/longform.py``: (block seconds, run) in the order they ran
BLOCK_RUNS = ((60, 1), (120, 1), (300, 1), (300, 2), (120, 2), (60, 2))


def block_seconds_section() -> str | None:
    """``benchmarks/longform.py --lengths`` at each block size, alternating: two runs each."""
    def line(block: int, row: dict, same: list[dict], both: Callable[..., str]) -> str:
        walls = " | ".join(f"{x['wall_s']:.1f} ({1 / x['rtf']:.0f})" for x in same)
        return (f"| {block} | {row['kind']} | {row['minutes']:.0f} min | {walls} | {both('peak_rss', '.0f', 2**-20)} | "
                f"{both('peak_vs_shortest', '.2f')} | {both('wer', '.2f', 100)} |")

    table = setting_table("block_seconds/longform_block{}_run{}.json", BLOCK_RUNS,
                          lambda x: (x["kind"], round(x["minutes"])),
                          "| block s | audio | length | run 1: wall s (x real time) | run 2 | peak RSS MiB | "
                          "peak vs its 3-min peak | WER % |", line)
    if table is None:
        return None
    first, markdown = table
    return ("### Block size of long files (`LEANSPEECH_STT__BLOCK_SECONDS`, `benchmarks/longform.py`)\n\n"
            "The audio of \"Long files, 3 minutes to 2 hours\", leanspeech alone (tiny.en int8, beam 5, "
            f"{first['threads']} threads, heap trim on), each cell a fresh process, peak by `VmHWM`; the block sizes "
            "alternate (60, 120, 300, then 300, 120, 60). A block's samples, their VAD copy and the next "
            "block's pieces are what a smaller block makes smaller; VAD runs again over what each block hands "
            f"on (about 30 s of each). Machine: {machine_isa(first)}. Command: `LEANSPEECH_STT__BLOCK_SECONDS=B "
            "python benchmarks/longform.py --lengths 'continuous=3,120 pauses=3,120' --anchors-up-to 0 --out "
            "benchmarks/results/block_seconds/longform_blockB_runN.json`.\n\n" + markdown)


DIARIZATION = ("diarization_cpu", "diarization_continuous_cpu")  # speech with pauses between turns, and none


def diarization_runs() -> list[dict]:
    """Both runs of ``benchmarks/diarization.py`` for each kind of conversation."""
    return [rep for stem in DIARIZATION for rep in two_runs(stem)]


def diarization_section() -> str | None:
    """``benchmarks/diarization.py``: leanspeech against senko, and the server's peak, on
    conversations with pauses between turns and without."""
    runs = diarization_runs()
    if not runs:
        return None
    convs = [c for rep in runs for c in rep["conversations"]]
    added = [(r["diarized"]["peak_rss"] - r["plain"]["peak_rss"]) / 2**20 for rep in runs for r in rep["server"]]
    ten = [(r["diarized"]["peak_rss"] - r["plain"]["peak_rss"]) / 2**20 for rep in runs for r in rep["server"]
           if r["minutes"] == 10]
    rep = runs[0]
    lengths = ", ".join(format(c["minutes"], "g") for c in rep["conversations"])
    kinds = sorted({r.get("kind", "pauses") for r in runs})
    intro = (f"Conversations of {lengths} minutes built at run time with an exact reference: turns of one to three "
             f"made-up sentences by four voices ({', '.join(rep['speakers'])}: the bundled Piper voice and three "
             "espeak-ng voices) at different loudness, no sentence said twice; two kinds: pauses of 0.4-1.5 s "
             "between turns, and continuous (0-0.15 s: one speaker straight after another). Each diarizer runs "
             f"on each file in a fresh process ({rep['threads']} threads; peak RSS is the process's own, load "
             f"included); DER with a {rep['collar_s']:g} s collar. senko (the anchor) is its own CPU pipeline: "
             "Silero VAD, CAM++ on torch, spectral clustering under 20 minutes and UMAP + HDBSCAN above; its raw "
             "segments are compared, its merged ones (gaps of up to 4 s within a speaker filled) shown too. The "
             "server part starts a fresh `leanspeech serve` per request and reads its lifetime peak from "
             f"`/memory`. Machine: {machine(rep)}. Commands: `python benchmarks/diarization.py --out "
             "benchmarks/results/diarization_cpu.json` (and `_run2`), and the same with `--kind continuous --out "
             "benchmarks/results/diarization_continuous_cpu.json` (and `_run2`).\n\n"
             f"Over both runs, every length and both kinds ({', '.join(kinds)}): DER "
             f"{span([c['ratios']['der_vs_senko_raw'] * 100 for c in convs], '.1f', '%')} against senko's "
             f"{span([c['ratios']['senko_raw_der'] * 100 for c in convs], '.1f', '%')}; "
             f"{span([c['ratios']['speed_vs_senko'] for c in convs], unit='x')} senko's speed; "
             f"{span([c['ratios']['peak_vs_senko'] for c in convs], unit='x')} its peak RSS. Diarization added "
             f"{span(added, '.0f', ' MiB')} to the server's peak ({span(ten, '.0f', ' MiB')} on the 10-minute "
             "files).")
    tables = [f"{r.get('kind', 'pauses').capitalize()}, run {i % 2 + 1}:\n\n{r['markdown']}\n"
              for i, r in enumerate(runs)]
    return "\n".join(["### Speaker diarization against senko (`benchmarks/diarization.py`)\n", intro + "\n", *tables])


def language_check_section() -> str | None:
    """``benchmarks/language_check.py``: what checking each window's language costs."""

    def intro(runs: list[dict]) -> str:
        rows = [r for rep in runs for r in rep["rows"] if r["config"].startswith("no language (the default")]
        before = span([r["vs_before"] for r in rows], ".3f", "x")
        anchor = span([r["vs_anchor"] for r in rows], ".3f", "x")
        rep = runs[0]
        return (f"{rep['model']}, beam 5, {rep['threads']} threads, {rep['minutes']:g} minutes of English-only Piper "
                "speech of both kinds (with pauses, and continuous), each configuration in a fresh process, the "
                f"median of {rep['repeat']} transcriptions. Machine: {machine(rep)}. Commands: `{rep['command']}` "
                "and the same with `--out benchmarks/results/language_check_cpu_run2.json`.\n\n"
                f"The default (no language given: each window's end heard again, the window cut by its chunks' "
                f"languages where that end is another language) took {before} the time of the default before it "
                f"(the first window's language kept for the file) and {anchor} the time with `language=en` "
                "given, over both kinds of audio and both runs. Times of one configuration moved by up to 25% "
                "between processes on this VM; the English-then-German clip shows what the check is for.")

    return two_run_section("language_check_cpu", "The language check on English-only audio "
                           "(`benchmarks/language_check.py`)", intro)


def sections() -> list[str]:
    """Every study's section (``### heading`` then its body), in the order of the docs."""
    parts = []
    lf = load("longform_cpu.json")
    if lf:
        parts.append(
            "### Long-form transcription against faster-whisper (`benchmarks/longform.py`)\n\n"
            f"{lf['audio']['seconds']:.0f} s of speech with pauses, tiny.en at {lf['precision']}, "
            f"beam {lf['beam_size']}, "
            f"{lf['threads']} threads, each configuration in a fresh process, median of {lf['repeat']} runs; "
            f"the anchor is {lf['anchor']} in the same run. Machine: {machine(lf)}.\n"
            f"Command: `{lf['command'].strip()}` (results: `benchmarks/results/longform_cpu.json`; "
            "a second run: `longform_cpu_run1.json`).\n\n" + lf["markdown"]
        )
    long_files = long_files_section()
    if long_files:
        parts.append(long_files.strip())
    parts.append(
        "### Real-time factor and peak RSS by precision (leanspeech batched, tiny.en, 2 threads)\n\n"
        "Peak RSS is the whole process's (`ru_maxrss`), load included. Commands: "
        '`python benchmarks/longform.py --audio ../shared/data/jfk.flac --reference "..." --precision P '
        "--configs fw-seq,ls-batched --out benchmarks/results/jfk_cpu_P.json` and "
        "`python benchmarks/longform.py --precision float32 --configs fw-seq,ls-batched --out "
        "benchmarks/results/longform_cpu_float32.json`.\n\n" + precision_table()
    )
    for section in (many_files_section(), packing_section(), encoder_padding_section(), ray_batch_section(),
                    diarization_section(), language_check_section()):
        if section:
            parts.append(section.strip())
    load_report = load("server_load_cpu.json")
    if load_report:
        parts.append(
            "### Server under concurrent clients (`benchmarks/server_load.py`)\n\n"
            f"Clips of {min(load_report['clips_s']):.0f}-{max(load_report['clips_s']):.0f} s, "
            f"{load_report['requests_per_client']} "
            f"requests per client per level, tiny.en int8, beam 5, {load_report['threads']} threads, loopback. "
            f"The anchor is the same server with batching off (`--no-batching`), in the same run. "
            f"Command: `{load_report['command'].strip()}`.\n\n" + load_report["markdown"]
        )
    for section in (server_peer_section(), server_pad5_section(), hostile_section(), load_thread_section(),
                    blas_threads_section(),
                    longform_3min_section(), block_seconds_section(), batch_size_section()):
        if section:
            parts.append(section.strip())
    stored = load("stored_copy_cpu.json")
    if stored:
        a, b = stored["rows"].values()
        parts.append(
            "### tiny.en stored as int8 (`benchmarks/stored_copy.py`)\n\n"
            f"Command: `{stored['command'].strip()}`; load time is the median of fresh processes.\n\n"
            "| copy | model.bin bytes | load s | transcript of jfk.flac |\n|---|---|---|---|\n"
            + "\n".join(
                f"| {name} | {r['model_bin_bytes']:,} | {r['load_s']:.3f} | {r['text']} |"
                for name, r in stored["rows"].items()
            )
            + f"\n\nDisk: {stored['disk_ratio'] * 100:.0f}% of the bundled float16 copy; load time ratio "
            f"{stored['load_ratio']:.2f}; same transcript: {'yes' if stored['same_transcript'] else 'NO'}."
        )
    tts = load("tts_cpu.json")
    if tts:
        parts.append(
            "### Text-to-speech by precision (`benchmarks/tts.py`)\n\n"
            f"Voice {tts['voice']}, a {tts['text_chars']}-character input, each precision in a fresh process, "
            f"median of {tts['repeat']} runs; the round trip is transcribed by tiny.en. "
            f"Command: `{tts['command'].strip()}`.\n\n"
            + tts["markdown"]
        )
    plan = load("../plan_cpu.json")
    if plan:
        lines = [
            "| model | weights | precision | batch | peak RSS MiB | estimate MiB (error) | load s | x real time greedy "
            "| x real time beam 5 |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in plan["rows"]:
            if not r["ok"]:
                lines.append(
                    f"| {r['model']} |  | {r['precision']} | {r['batch']} | failed: {r['error']} |  |  |  |  |"
                )
                continue
            err = r["estimate_error"]
            lines.append(
                f"| {r['model']} | {'synthetic' if r['synthetic'] else 'real'} | {r['precision']} | {r['batch']} | "
                f"{r['peak_bytes'] / 2**20:.0f} | {r['estimate_bytes'] / 2**20:.0f} ({err * 100:+.0f}%) "
                f"| {r['load_s']:.2f} | "
                f"{1 / r['rtf_greedy']:.1f} | {1 / r['rtf_beam5']:.1f} |"
            )
        parts.append(
            "### What fits on this CPU (`leanspeech plan`)\n\n"
            "Command: `leanspeech plan --models tiny.en,base.en,small.en,medium.en,large-v3-turbo "
            "--precisions float32,int8 --batch-sizes 1,8 --threads 2 --out DIR` (copied to "
            "`benchmarks/plan_cpu.json` and `benchmarks/plan_cpu.png`). Peak RSS is the whole process; the "
            "estimate covers the model alone and its error is against the peak minus the process's RSS before "
            "loading. Speed is for 30-second windows of real speech with the decode held at 64 tokens.\n\n"
            + "\n".join(lines)
            + "\n\n![plan](benchmarks/plan_cpu.png)"
        )
    prec = load("../precision_cpu/results.json")
    if prec:
        parts.append(
            "### Every precision on 5 minutes of speech (`leanspeech bench --suite long`)\n\n"
            f"Command: `{prec['command'].strip()}` (results, CSV and charts in `benchmarks/precision_cpu/`).\n\n"
            + prec["markdown"]
            + "\n\n![memory against WER](benchmarks/precision_cpu/memory_vs_wer.png)"
            + "\n![speed against memory](benchmarks/precision_cpu/speed_vs_memory.png)"
            + ("\n\n" + "\n".join(f"Note: {n}" for n in prec.get("notes", []) if n) if prec.get("notes") else "")
        )
    live = [r for r in (load("live_latency.json"), load("live_latency_run2.json")) if r]
    if live:
        first = live[0]
        parts.append(
            "### Live transcription latency (`benchmarks/live_latency.py`)\n\n"
            f"{first['utterances']} corpus sentences with {first['pause_s']:g} s pauses ({first['audio_s']:.0f} s), "
            f"replayed at real-time pace in 100 ms float32 frames over loopback by each client at once; "
            f"{first['model']} at {first['precision']} on {machine(first)}. The anchor is "
            f"{first.get('anchor') or 'not run'} (its own server, same model files, same replay). "
            "Command: `python benchmarks/live_latency.py --anchor-python /path/to/venv-with-whisper-live/bin/python` "
            "(results: `benchmarks/results/live_latency.json`, a second run `live_latency_run2.json`).\n\n"
            + live_table(live, "server")
        )
    for heading, runs in LIVE_LABELLED_SECTIONS:
        table = labelled_live_table(runs)
        if table:
            parts.append(f"### {heading}\n\n{table}")
    protocols = [r for r in (load("live_latency_protocols.json"), load("live_latency_protocols_run2.json")) if r]
    if protocols:
        first = protocols[0]
        parts.append(
            "### Every live protocol on one server (`benchmarks/live_latency.py --protocols`)\n\n"
            "The same replay through the WhisperLive protocol, the OpenAI Realtime API (the `openai` SDK, 24 kHz "
            f"pcm16, server VAD with {first['realtime_silence_ms']} ms of silence) and Wyoming (one connection per "
            f"utterance, as a Home Assistant satellite, `audio-stop` {first['wyoming_tail_s']:g} s after the speech "
            "ends), by 1 and 4 clients at once, each protocol in turn on one fresh `leanspeech serve` per client "
            f"count; {first['model']} at {first['precision']} on {machine(first)} "
            f"(ISA: {', '.join(first['machine']['isa'])}: slower than the AVX-512 machine above). "
            "Latency runs from the moment the last speech sample was "
            "sent, so the Realtime and Wyoming figures include the silence that ends a turn there. Command: "
            "`python benchmarks/live_latency.py --protocols whisperlive,realtime,wyoming --clients 1,4 --output "
            "benchmarks/results/live_latency_protocols.json` (and `live_latency_protocols_run2.json`).\n\n"
            + live_table(protocols, "protocol")
        )
    return parts


def slug(heading: str) -> str:
    """A study's page name, from its heading: the words before the command, lower case."""
    words = heading.removeprefix("### ").split(" (`")[0].lower()
    return "-".join("".join(c if c.isalnum() else " " for c in words).split())[:60].rstrip("-")


def charts(markdown: str) -> tuple[str, list[tuple[Path, Path]]]:
    """``markdown`` with each chart of the repository (``![..](benchmarks/X.png)``) pointed at
    its copy beside the pages, and the copies to make."""
    copies: list[tuple[Path, Path]] = []
    out = []
    for part in markdown.split("](benchmarks/"):
        if out:
            path, rest = part.split(")", 1)
            name = path.replace("/", "-")
            copies.append((HERE / path, PAGES / "img" / name))
            part = f"img/{name}){rest}"
        out.append(part)
    return "](".join(out), copies


def page(section: str, old: str | None) -> tuple[str, list[tuple[Path, Path]]]:
    """A study's page: its title, the generated block, and the prose the page had after it."""
    heading, _, body = section.partition("\n")
    body, copies = charts(body.strip())
    prose = old.split(END, 1)[1].strip() if old and END in old else ""
    title = heading.removeprefix("### ")
    text = (f"# {title}\n\n{START}\n<!-- written by benchmarks/results_pages.py from benchmarks/results: "
            f"edit the prose below the block, not the block -->\n\n{body}\n\n{END}\n")
    return text + (f"\n{prose}\n" if prose else ""), copies


def span(values: list[float], fmt: str = ".2f", unit: str = "") -> str:
    """``low-high`` of ``values`` (one figure when they agree)."""
    low, high = format(min(values), fmt), format(max(values), fmt)
    return f"{low}{unit}" if low == high else f"{low}-{high}{unit}"


def headline() -> str:
    """The README's table: a few results, each a range over the runs (and both kinds of audio
    where the study has them), with its audio and machine."""
    rows = ["| what | measured | audio and machine | details |", "|---|---|---|---|"]
    runs = two_runs(LONG_FILES)
    if runs:
        lean = [r for rep in runs for r in rep["rows"] if r["config"] == "ls-batched"]
        longest = max(r["minutes"] for r in lean)
        peaks = [r["peak_rss"] / 2**20 for r in lean]
        growth = [r["peak_vs_shortest"] for r in lean if "peak_vs_shortest" in r]
        speed = [r["speed_vs_fw-batched"] for r in lean if "speed_vs_fw-batched" in r]
        against = [r["peak_vs_fw-batched"] for r in lean if "peak_vs_fw-batched" in r]
        rows.append(f"| Long files, 3 minutes to {longest / 60:.0f} hours, in bounded memory | peak RSS "
                    f"{span(peaks, '.0f', ' MiB')}, at most {max(growth):.2f}x the 3-minute peak; at 3 minutes "
                    f"{span(speed, unit='x')} faster-whisper batched's speed at {span(against, unit='x')} its peak | "
                    f"Piper speech, continuous and with pauses; {machine(runs[0])} "
                    "| [long files](docs/benchmarks/long-files-3-minutes-to-2-hours.md) |")
    many = [r for r in (load("many_files_cpu.json"), load("many_files_cpu_run2.json")) if r]
    if many:
        packed = [r for rep in many for r in rep["rows"] if "(the default)" in r["name"]]
        rows.append(f"| {many[0]['files']} short files, packed into shared windows | "
                    f"{span([r['speedup_vs_anchor'] for r in packed], unit='x')} the speed of faster-whisper's "
                    f"loop, WER {span([r['wer'] * 100 for r in packed], unit='%')} | JFK and Piper clips of "
                    f"{min(many[0]['lengths_s']):.0f}-{max(many[0]['lengths_s']):.0f} s; {machine(many[0])} | "
                    "[many files](docs/benchmarks/many-short-files-windows-of-several-files-per-decode.md) |")
    peer = two_runs("server_peer_cpu")
    if peer:
        on = [row for rep in peer for row in rep["modes"]["on"] if row["clients"] == 8]
        wl = [row for rep in peer for row in rep["modes"]["whisperlive"] if row["clients"] == 8]
        ratio = [a["throughput"] / b["throughput"] for a, b in zip(on, wl, strict=True)]
        rows.append(f"| The server at 8 clients against WhisperLive's REST server | {span(ratio, unit='x')} "
                    f"its throughput ({span([r['throughput'] for r in on], '.0f')} audio s/s) | clips of "
                    f"{span(peer[0]['clips_s'], '.0f', ' s')}; "
                    f"{machine(peer[0])} | [server](docs/benchmarks/the-server-against-whisperlive-s-rest-server.md) |")
    hostile = two_runs("hostile_cpu")
    if hostile:
        rates, peaks = [], []
        for rep in hostile:
            loud = rep["phases"]["hostile"]["clients"].values()
            rates += [row["succeeded"] / row["requests"] for row in loud if row["requests"]]
            peaks.append(max(p["peak_rss"] for p in rep["phases"].values()) / 2**20)
        bound = hostile[0]["budget_bytes"] / 2**20 + hostile[0]["margin_mib"]
        rows.append(f"| Legitimate clients beside hostile ones | {min(rates) * 100:.0f}% of requests succeeded; "
                    f"peak RSS {span(peaks, '.0f', ' MiB')} against a {bound:.0f} MiB bound | JFK on every front "
                    f"door at once; {machine(hostile[0])} | "
                    "[hostile clients](docs/benchmarks/legitimate-clients-beside-hostile-ones.md) |")
    protocols = [r for r in (load("live_latency_protocols.json"), load("live_latency_protocols_run2.json")) if r]
    if protocols:
        one = [r for rep in protocols for r in rep["rows"] if r["clients"] == 1 and r.get("completion_p50_s")]
        rows.append(f"| Live text, 1 client, any protocol | final text "
                    f"{span([r['completion_p50_s'] for r in one], unit=' s')} (median) after the speech ends | "
                    f"{protocols[0]['utterances']} sentences with {protocols[0]['pause_s']:g} s pauses; "
                    f"{machine(protocols[0])} | "
                    "[live protocols](docs/benchmarks/every-live-protocol-on-one-server.md) |")
    diar = diarization_runs()
    if diar:
        convs = [c for rep in diar for c in rep["conversations"]]
        ten = [(r["diarized"]["peak_rss"] - r["plain"]["peak_rss"]) / 2**20 for rep in diar for r in rep["server"]
               if r["minutes"] == 10]
        lengths = ", ".join(format(c["minutes"], "g") for c in diar[0]["conversations"])
        rows.append(f"| Who spoke when, offline (CAM++ on ONNX Runtime) against senko | DER "
                    f"{span([c['ratios']['der_vs_senko_raw'] * 100 for c in convs], '.1f', '%')} against "
                    f"{span([c['ratios']['senko_raw_der'] * 100 for c in convs], '.1f', '%')}, "
                    f"{span([c['ratios']['speed_vs_senko'] for c in convs], unit='x')} its speed, "
                    f"{span([c['ratios']['peak_vs_senko'] for c in convs], unit='x')} its peak RSS; "
                    f"+{span(ten, '.0f', ' MiB')} on the server's peak at 10 minutes | conversations of "
                    f"{lengths} min, Piper and espeak-ng voices, with pauses between turns and without; "
                    f"{machine(diar[0])} | "
                    "[diarization](docs/benchmarks/speaker-diarization-against-senko.md) |")
    tts = load("tts_cpu.json")
    if tts and tts.get("rows"):
        rows.append(f"| Text-to-speech by precision | {tts_summary(tts)} | a {tts['text_chars']}-character input, "
                    f"voice {tts['voice']}; {machine(tts)} | [tts](docs/benchmarks/text-to-speech-by-precision.md) |")
    return "\n".join(rows)


def tts_summary(tts: dict) -> str:
    return "peak RSS " + ", ".join(f"{r['precision']} {r['peak_rss'] / 2**20:.0f} MiB" for r in tts["rows"] if r["ok"])


def main() -> None:
    check = "--check" in sys.argv
    stale: list[str] = []
    for section in sections():
        target = PAGES / f"{slug(section.partition(chr(10))[0])}.md"
        old = target.read_text() if target.exists() else None
        text, copies = page(section, old)
        for source, copy in copies:
            if not copy.exists() or copy.read_bytes() != source.read_bytes():
                stale.append(str(copy))
                if not check:
                    copy.parent.mkdir(parents=True, exist_ok=True)
                    copy.write_bytes(source.read_bytes())
        if text != old:
            stale.append(str(target))
            if not check:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
    readme = README.read_text()
    head, rest = readme.split(HEADLINE[0], 1)
    _, tail = rest.split(HEADLINE[1], 1)
    new = f"{head}{HEADLINE[0]}\n{headline()}\n{HEADLINE[1]}{tail}"
    if new != readme:
        stale.append(str(README))
        if not check:
            README.write_text(new)
    if check and stale:
        sys.exit("out of date (run python benchmarks/results_pages.py): " + ", ".join(stale))


if __name__ == "__main__":
    main()
