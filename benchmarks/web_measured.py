"""Copy the committed benchmark results that the page's Fits panel shows into the package
(``src/leanspeech/web/static/measured/``), so that an installed leanspeech shows them
offline. Run after a benchmark rewrites one; ``tests/unit/test_page.py`` fails while a copy
differs from its source.

    python benchmarks/web_measured.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "leanspeech" / "web" / "static" / "measured"
#: shipped name -> committed source
SOURCES = {
    "plan_cpu.json": "benchmarks/plan_cpu.json",
    "plan_cpu.png": "benchmarks/plan_cpu.png",
    "plan_base_cpu.png": "benchmarks/plan_base_cpu/plan.png",
    "precision_memory_vs_wer.png": "benchmarks/precision_cpu/memory_vs_wer.png",
    "precision_speed_vs_memory.png": "benchmarks/precision_cpu/speed_vs_memory.png",
    "multilingual_memory_vs_wer.png": "benchmarks/multilingual_cpu/memory_vs_wer.png",
}


def main() -> None:
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, source in SOURCES.items():
        shutil.copyfile(ROOT / source, TARGET / name)
        print(f"{source} -> {(TARGET / name).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
