"""``leanspeech batch --ray``: the batch job on Ray Data, an actor pool of workers.

Ray Data reads the list of files still to do; ``--workers N`` actors each load one model
(``Transcriber``) at the chosen precision and transcribe their share in batches of files
(``transcribe_many``: the windows of a batch's files decoded together), writing every result
next to its name as it finishes (``leanspeech.batch.job.write``: whole or absent). A worker that
dies is restarted by Ray and its batch retried; the retry skips the files whose outputs are
already there, so nothing is lost and no file is written twice (a worker killed between two
formats of one file leaves that file not done, and the retry writes it again).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from leanspeech.batch.job import Item, Summary, is_done, not_done, transcribe_items
from leanspeech.errors import OptionalDependencyError

#: Files per Ray Data batch: one decode group of short files, small enough to spread.
FILES_PER_BATCH = 4


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise OptionalDependencyError("ray[data]", "ray", "batch jobs on Ray (--ray)") from None
    return ray


class Worker:
    """One Ray Data actor: a loaded model, transcribing the batches of files it is given."""

    def __init__(self, transcriber_kwargs: dict, formats: tuple[str, ...]):
        from leanspeech.stt import Transcriber

        self.formats = formats
        self.transcriber = Transcriber(**transcriber_kwargs)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        items = [Item(Path(s), Path(t)) for s, t in zip(batch["source"], batch["target"], strict=True)]
        out: dict[str, list] = {"source": [], "status": [], "error": []}

        def record(item: Item, status: str, error: str = "") -> None:
            out["source"].append(str(item.source))
            out["status"].append(status)
            out["error"].append(error)

        todo = []
        for item in items:
            if is_done(item, self.formats):  # a retried batch: written before this worker's predecessor died
                record(item, "skipped")
            else:
                todo.append(item)
        for item, status, error in transcribe_items(self.transcriber, todo, self.formats):
            record(item, status, error)
        return out


def run_ray_batch(items: list[Item], formats: tuple[str, ...], transcriber_kwargs: dict, *, workers: int,
                  cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0, address: str | None = None,
                  on_done: Callable[[Item, str], None] | None = None) -> Summary:
    """Run the job on Ray (joining ``address``, or the cluster already connected, or a new local
    one). Files already done are skipped here, before Ray sees the list."""
    ray = _ray()
    from ray.data import DataContext

    summary = Summary()
    by_source = {str(i.source): i for i in items}
    todo = not_done(items, formats, summary, on_done)
    if not todo:
        return summary
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    context = DataContext.get_current()
    context.enable_progress_bars = False  # the job's own bar counts files
    dataset = ray.data.from_items([{"source": str(i.source), "target": str(i.target)} for i in todo],
                                  override_num_blocks=max(1, min(len(todo), workers * 4)))
    results = dataset.map_batches(
        Worker, fn_constructor_kwargs={"transcriber_kwargs": transcriber_kwargs, "formats": formats},
        batch_size=FILES_PER_BATCH, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=cpus_per_worker,
        num_gpus=gpus_per_worker,
        batch_format="default", max_restarts=-1, max_task_retries=-1,
    )
    seen: set[str] = set()
    for row in results.iter_rows():
        source = row["source"]
        item = by_source[source]
        if source in seen:  # the same file from a retried batch: counted once
            continue
        seen.add(source)
        status = row["status"]
        if status == "failed":
            summary.failed.append((item.source, row["error"]))
        else:  # "skipped" here: written in this job by a worker that died before it could say so
            status = "written"
            summary.written.append(item.source)
        if on_done:
            on_done(item, status)
    return summary
