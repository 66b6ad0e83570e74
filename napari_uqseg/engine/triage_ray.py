"""Triage on a Ray cluster: one actor per worker holds the model; cases stream back as they finish.

Plain actors and ``ray.util.ActorPool``, not Ray Data: a case is one file in and one folder out, the
work per case is seconds to minutes (no batching across cases to gain), and the outputs must land in the
study folder under their case ids, so a Dataset pipeline would add a dependency (pyarrow/pandas) and a
block abstraction without removing any code. Why in full: docs/triage.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from napari_uqseg.core.errors import InputError
from napari_uqseg.engine.triage_cases import CasePredictor, TriageCase

#: a killed actor is restarted (model reloaded) once and its in-flight case retried once
MAX_RESTARTS = 1


def connect(address: str | None) -> Any:
    """Import Ray and join a cluster: ``address``, else ``RAY_ADDRESS``, else the one ``ray start`` began on this
    machine, else a private local one (``ray.init``'s own order).

    Inside a Ray task (the server's Ray job executor) the running cluster is used as it is.
    """
    try:
        import ray
    except ImportError as exc:
        raise InputError("--executor", "ray is not installed; pip install 'napari-uqseg[ray]'") from exc
    if not ray.is_initialized():
        if address or os.environ.get("RAY_ADDRESS"):
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
    return ray


def run_ray(
    cases: list[TriageCase],
    predictor_args: tuple[Any, ...],
    workers: int,
    num_gpus: float = 0.0,
    address: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Triage ``cases`` with ``workers`` actors of ``num_gpus`` GPUs (and one CPU) each.

    The output folder in ``predictor_args`` must be on storage every Ray node mounts at the same path.
    Yields each case's row (or error) in completion order; the actors are killed at the end.
    """
    if num_gpus < 0:
        raise InputError("--num-gpus", f"must be >= 0, got {num_gpus}")
    ray = connect(address)
    from ray.util import ActorPool

    model_dir, out_dir, device, review_map, threads = predictor_args
    device = "cuda" if num_gpus > 0 else device
    actor_class = ray.remote(CasePredictor).options(
        num_cpus=1, num_gpus=num_gpus, max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS
    )
    actors = [actor_class.remote(model_dir, out_dir, device, review_map, threads) for _ in range(workers)]
    try:
        pool = ActorPool(actors)
        yield from pool.map_unordered(lambda actor, case: actor.predict.remote(case), cases)
    finally:
        for actor in actors:
            ray.kill(actor)
