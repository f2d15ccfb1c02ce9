"""The page served at ``/``: plain HTML, CSS and ES modules in ``static/``, no build step.

``static/vendor/`` holds uPlot 1.6.32 (MIT, its licence beside it), the memory chart's only
library. ``static/measured/`` holds copies of committed benchmark results (the plan table and
charts) that the Fits panel shows; ``benchmarks/web_measured.py`` copies them, and a unit test
checks they match the committed ones.
"""

from pathlib import Path

STATIC = Path(__file__).parent / "static"
