"""The checks a job request passes before it is queued: kind, model, and the parameters of its kind."""

from __future__ import annotations

from typing import Any

from napari_uqseg.core.errors import InputError, NotFoundError
from napari_uqseg.core.options import check_known, look_up_option
from napari_uqseg.core.wire import ID_PATTERN, NAME_PATTERN, VERSION_PATTERN, check_id
from napari_uqseg.server.data_dir import DataDir
from napari_uqseg.server.job_params import check_finetune_options, check_train_config
from napari_uqseg.server.job_runner import JOB_KINDS
from napari_uqseg.server.triage_job import TRIAGE_PARAMS, check_triage_params

#: parameters each job kind takes
JOB_PARAMS = {
    "finetune": ("version", "corrections", "options"),
    "evaluate": ("version", "corrections"),
    "train": ("method", "dataset", "config"),
    "triage": TRIAGE_PARAMS,
}


def check_job(store: DataDir, kind: str, model: str, params: dict[str, Any]) -> None:
    """Raise ``InputError`` (``NotFoundError`` for an unknown version) unless the job can be queued."""
    look_up_option("kind", kind, JOB_KINDS, "job kind")
    check_id(model, "model", NAME_PATTERN)
    if not isinstance(params, dict):
        raise InputError("params", f"{kind} params must be an object with keys among {list(JOB_PARAMS[kind])}")
    check_known("params", params, JOB_PARAMS[kind])
    if kind == "train":
        from napari_uqseg.engine.methods.base import method_class

        method_class(str(params.get("method", "")))
        store.dataset_dir(str(params.get("dataset", "")))
        check_train_config(str(params["method"]), params.get("config", {}))
        return
    if kind == "triage":
        return check_triage_params(store, model, params)
    summary = store.ledger.summary(model)
    if "version" in params:
        check_id(params["version"], "params.version", VERSION_PATTERN)
        if params["version"] not in {v.version for v in summary.versions}:
            raise NotFoundError("params.version", f"model {model!r} has no version {params['version']!r}")
    if "corrections" in params:
        ids = params["corrections"]
        if not isinstance(ids, list) or not ids:
            raise InputError("params.corrections", "must be a non-empty list of correction ids")
        for cid in ids:
            check_id(cid, "params.corrections", ID_PATTERN)
    if not store.ledger.corrections(model, params.get("corrections")):
        raise InputError("corrections", f"model {model!r} has no submitted corrections to work on")
    if kind == "finetune":
        check_finetune_options(params.get("options", {}))
