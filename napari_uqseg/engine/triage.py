"""Study-wide triage: predict every case with uncertainty and write a worklist sorted by the case score.

Two executors share one per-case body (:class:`~napari_uqseg.engine.triage_cases.CasePredictor`): a local
process pool (each worker loads the model once) and Ray actors (``engine.triage_ray``). Finished cases
are skipped on a rerun, so a killed run loses nothing it finished. See docs/triage.md.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.core.worklist import WorklistRow, write_worklist
from napari_uqseg.engine.model_folder import read_card
from napari_uqseg.engine.triage_cases import (
    CasePredictor,
    TriageCase,
    find_cases,
    is_done,
    read_record,
    remove_stale_staging,
)

EXECUTORS = ("local", "ray")

_worker: CasePredictor | None = None  # the model a pool worker loaded once


def _init_worker(*args: Any) -> None:
    global _worker
    _worker = CasePredictor(*args)


def _predict_in_worker(case: TriageCase) -> dict[str, Any]:
    assert _worker is not None, "pool worker used before its initializer ran"
    return _worker.predict(case)


def default_workers(n_cases: int) -> int:
    """Local pool size: one single-threaded worker per CPU core this process may use, at most one per case."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, n_cases))


def run_local(cases: list[TriageCase], predictor_args: tuple[Any, ...], workers: int) -> Iterator[dict[str, Any]]:
    """Triage ``cases`` in this process (``workers == 1``) or a pool of ``workers`` spawned processes.

    Yields each case's row (or error) as soon as it is finished, in completion order.
    """
    if workers <= 1:
        predictor = CasePredictor(*predictor_args)
        for case in cases:
            yield predictor.predict(case)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=predictor_args)
    try:
        futures = [pool.submit(_predict_in_worker, case) for case in cases]
        for future in as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def triage(
    model_dir: str | Path,
    data: str | Path | list[TriageCase],
    out_dir: str | Path,
    executor: str = "local",
    workers: int | None = None,
    device: str = "cpu",
    review_map: str | None = None,
    progress: Progress = no_progress,
    num_gpus: float = 0.0,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Triage a study into ``out_dir``: per-case outputs, ``worklist.json`` and ``worklist.csv``.

    Parameters
    ----------
    model_dir : str or Path
        Model folder.
    data : str, Path or list of TriageCase
        Folder or list file (see :func:`~napari_uqseg.engine.triage_cases.find_cases`), or the cases.
    executor : str
        ``"local"`` (process pool) or ``"ray"`` (actors on a Ray cluster).
    workers : int, optional
        Pool processes or Ray actors (default: :func:`default_workers` locally, 1 actor per GPU share on Ray).
    num_gpus : float
        Ray only: GPUs per actor (fractions share a GPU).

    Returns
    -------
    dict
        ``cases``, ``skipped`` (finished before), ``predicted``, ``failed`` (case -> error),
        ``worklist`` (path), ``seconds``, ``workers``, ``executor``.
    """
    if executor not in EXECUTORS:
        raise InputError("--executor", f"must be one of {EXECUTORS}, got {executor!r}")
    if not (Path(model_dir) / "model.json").is_file():
        raise InputError(str(model_dir), "not a model folder (no model.json); train one with `uqseg train`")
    cases = data if isinstance(data, list) else find_cases(data)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out, cases)
    pending = [c for c in cases if not is_done(out, c.case)]
    skipped = len(cases) - len(pending)
    n_workers = workers or default_workers(len(pending))
    if n_workers < 1:
        raise InputError("--workers", f"must be >= 1, got {n_workers}")
    args = (str(Path(model_dir).resolve()), str(out), device, review_map, 1)
    start = time.perf_counter()
    failed = _run(executor, pending, args, n_workers, num_gpus, ray_address, _counter(progress, skipped, len(cases)))
    rows = [WorklistRow.from_dict(read_record(out, c.case)) for c in cases if is_done(out, c.case)]
    card = read_card(model_dir)
    meta = {"model": str(model_dir), "method": card.method, "labels": card.labels, "failed": failed}
    worklist, _ = write_worklist(rows, out, meta)
    return {
        "cases": len(cases),
        "skipped": skipped,
        "predicted": len(pending) - len(failed),
        "failed": failed,
        "worklist": str(worklist),
        "seconds": time.perf_counter() - start,
        "workers": n_workers,
        "executor": executor,
    }


def _counter(progress: Progress, done: int, total: int) -> Callable[[str], None]:
    state = {"done": done}
    progress(done, total, f"{done} of {total} cases finished before" if done else "starting")

    def step(case: str) -> None:
        state["done"] += 1
        progress(state["done"], total, case)

    return step


def _run(
    executor: str,
    pending: list[TriageCase],
    args: tuple[Any, ...],
    workers: int,
    num_gpus: float,
    ray_address: str | None,
    step: Callable[[str], None],
) -> dict[str, str]:
    """Run the pending cases; returns ``{case: error}`` of the ones that failed."""
    if not pending:
        return {}
    if executor == "ray":
        from napari_uqseg.engine.triage_ray import run_ray

        results = run_ray(pending, args, workers, num_gpus, ray_address)
    else:
        results = run_local(pending, args, workers)
    failed = {}
    for result in results:
        if "error" in result:
            failed[result["case"]] = result["error"]
        step(result["case"])
    return failed
