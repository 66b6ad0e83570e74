"""The ``triage`` job: a study triage of a server dataset, run by either job executor, and its outputs.

The job calls ``engine.triage.triage`` (the function behind ``uqseg triage``) with the job folder's
``triage/`` as output. Under the local executor the cases run in the job process (``workers`` > 1: a
process pool, killed with the job's process tree on cancel); under the Ray executor the job task starts
``workers`` Ray actors, owned by the task, so cancelling the task ends them too. A re-queued job (server
restart) skips the cases it finished.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from napari_uqseg.core.errors import InputError, NotFoundError
from napari_uqseg.core.wire import NAME_PATTERN, VERSION_PATTERN, check_id
from napari_uqseg.core.worklist import WORKLIST_JSON
from napari_uqseg.server.data_dir import DataDir, safe_path

TRIAGE_PARAMS = ("version", "dataset", "workers", "num_gpus", "review_map")
OUTPUT_FOLDER = "triage"
MAX_WORKERS = 64


def check_triage_params(store: DataDir, model: str, params: dict[str, Any]) -> None:
    """Validate a triage job's params before it is queued (clear errors naming the bad field)."""
    store.dataset_dir(str(params.get("dataset", "")))
    summary = store.ledger.summary(model)
    if "version" in params:
        check_id(params["version"], "params.version", VERSION_PATTERN)
        if params["version"] not in {v.version for v in summary.versions}:
            raise NotFoundError("params.version", f"model {model!r} has no version {params['version']!r}")
    workers = params.get("workers", 1)
    if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= MAX_WORKERS:
        raise InputError("params.workers", f"must be an integer in [1, {MAX_WORKERS}]")
    gpus = params.get("num_gpus", 0.0)
    if not isinstance(gpus, int | float) or isinstance(gpus, bool) or not (math.isfinite(gpus) and gpus >= 0):
        raise InputError("params.num_gpus", "must be a number >= 0")
    if "review_map" in params and not isinstance(params["review_map"], str):
        raise InputError("params.review_map", "must be a map name")


def _inside_ray() -> bool:
    try:
        import ray
    except ImportError:
        return False
    return ray.is_initialized()


def run_triage(store: DataDir, job: dict[str, Any], device: str, progress: Any) -> dict[str, Any]:
    """Triage the job's dataset with the model version; returns the summary the ledger keeps."""
    from napari_uqseg.engine.triage import triage

    model, params = job["model"], job["params"]
    version = check_id(params.get("version") or store.ledger.serving(model), "version", VERSION_PATTERN)
    dataset = store.dataset_dir(str(params.get("dataset", "")))
    out = store.job_dir(job["id"]) / OUTPUT_FOLDER
    executor = "ray" if _inside_ray() else "local"
    gpus = float(params.get("num_gpus", 0.0 if device == "cpu" else 1.0))
    summary = triage(
        store.model_dir(model, version),
        dataset,
        out,
        executor,
        int(params.get("workers", 1)),
        device,
        params.get("review_map"),
        progress,
        num_gpus=gpus,
    )
    failed = summary["failed"]
    return {
        "model": model,
        "version": version,
        "dataset": dataset.name,
        "cases": summary["cases"],
        "skipped": summary["skipped"],
        "predicted": summary["predicted"],
        "failed": failed,
        "executor": executor,
        "workers": summary["workers"],
        "seconds": summary["seconds"],
    }


def _output_dir(store: DataDir, jid: str) -> Path:
    job = store.ledger.job_row(check_id(jid, "job id"))
    if job["kind"] != "triage":
        raise InputError("job", f"job {jid} is a {job['kind']} job, not a triage")
    return store.job_dir(jid) / OUTPUT_FOLDER


def worklist_document(store: DataDir, jid: str) -> dict[str, Any]:
    """The job's ``worklist.json`` (written when the triage finished)."""
    path = _output_dir(store, jid) / WORKLIST_JSON
    if not path.is_file():
        raise NotFoundError("worklist", f"job {jid} has no worklist yet (it is written when the triage ends)")
    return json.loads(path.read_text())


def case_file(store: DataDir, jid: str, case: str, name: str) -> Path:
    """One file of a triaged case: ``image`` (the scan), ``review`` (review.json) or an output volume name."""
    check_id(case, "case", NAME_PATTERN)
    check_id(name, "name", NAME_PATTERN)
    rows = {row["case"]: row for row in worklist_document(store, jid)["cases"]}
    if case not in rows:
        raise NotFoundError("case", f"job {jid} triaged no case {case!r}")
    if name == "image":
        image = Path(rows[case]["image"]).resolve()
        if not image.is_relative_to((store.root / "datasets").resolve()) or not image.is_file():
            raise NotFoundError("image", f"the image of case {case!r} is no longer in the server's datasets")
        return image
    folder = safe_path(_output_dir(store, jid), rows[case]["outputs"])
    path = folder / ("review.json" if name == "review" else f"{name}.nii.gz")  # name is a checked plain name
    if not path.is_file():
        raise NotFoundError("name", f"case {case!r} has no output {name!r}")
    return path
