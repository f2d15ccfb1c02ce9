"""Screenshots of the page's panels, written by the browser tests to ``build/screenshots/``
(one of each is committed in ``docs/`` and shown in the README)."""

from pathlib import Path

SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


def screenshot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
