"""``kill -9`` of the server at random moments during a stream of corrections and fine-tune jobs.

Every correction the server acknowledged (201/200) must be in the ledger, with its file, after all rounds;
every fine-tune job must end (resumed from its checkpoints across the kills). A correction whose answer
was lost in the crash is retried after the restart with the same ``client_key`` (stored once, as a client
would). Each job is interrupted at most ``MAX_KILLS_PER_JOB`` times, then allowed to finish: the server gives
up on a job after ``ledger.MAX_ATTEMPTS`` starts, which is a crash loop, not what this measures.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import requests

from napari_uqseg.bench.reliability.corpus import label_b64
from napari_uqseg.core.nifti_io import nifti_bytes
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.server.launcher import ServerHandle, start_server
from napari_uqseg.server.ledger import Ledger

MAX_KILLS_PER_JOB = 2
JOB_WAIT_S = 300.0
FINETUNE = {"iterations": 30, "checkpoint_every": 5}
FINETUNE_CASES = 4  # a fine-tune job trains on this many acknowledged corrections
STREAM_PAUSE_S = 0.05  # between two corrections of the stream


@dataclass
class KillFigures:
    """Outcome of the kill -9 rounds."""

    rounds: int = 0
    acknowledged: int = 0
    found_after: int = 0
    lost: int = 0
    unanswered_then_retried: int = 0
    jobs_submitted: int = 0
    jobs_succeeded: int = 0
    jobs_not_finished: int = 0
    job_attempts: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("problems", "job_attempts")}
        out["max_attempts_of_a_job"] = max(self.job_attempts, default=0)
        return out | {"problems": self.problems[:20]}


class _Stream:
    """Corrections posted one after another until stopped; keeps acknowledged and unanswered keys."""

    def __init__(self, server: ServerHandle, pid: str, label: str, prefix: str) -> None:
        self.server, self.pid, self.label, self.prefix = server, pid, label, prefix
        self.acked: dict[str, str] = {}
        self.unanswered: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.server.token}"
        n = 0
        while not self.stop.is_set():
            key = f"{self.prefix}-{n}"
            n += 1
            body = {"prediction": self.pid, "label": self.label, "client_key": key}
            try:
                r = session.post(f"{self.server.url}/v1/corrections", json=body, timeout=(2, 30))
            except requests.exceptions.RequestException:
                self.unanswered.append(key)
                return  # the server is gone
            if r.status_code in (200, 201):
                self.acked[key] = r.json()["id"]
            elif r.status_code != 503:
                self.unanswered.append(key)
            self.stop.wait(STREAM_PAUSE_S)


def _setup(server: ServerHandle) -> tuple[str, str]:
    """Upload an image and predict it; returns ``(prediction id, label base64)``."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {server.token}"
    image, label = synthetic_case((20, 20, 20), seed=77)
    data = nifti_bytes(image, dtype=np.float32)
    sha = hashlib.sha256(data).hexdigest()
    session.put(f"{server.url}/v1/images/{sha}", data=data, timeout=60).raise_for_status()
    r = session.post(f"{server.url}/v1/predictions", json={"image": sha, "model": "tiny_det"}, timeout=120)
    r.raise_for_status()
    return r.json()["id"], label_b64(label.array.astype(np.uint8), label.affine)


def _api(server: ServerHandle, method: str, path: str, **kw: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {server.token}"}
    return requests.request(method, server.url + path, headers=headers, timeout=(5, 120), **kw)


def _job_state(server: ServerHandle, jid: str, wait: float = 0.0) -> dict[str, Any]:
    return _api(server, "GET", f"/v1/jobs/{jid}?wait={wait}").json()


def _round(
    server: ServerHandle, pid: str, label: str, n: int, job: dict[str, Any], rng: random.Random, acked: list[str]
) -> _Stream:
    """One round: start the server, stream corrections, maybe (re)start a job, kill -9 at a random moment."""
    server.start()
    stream = _Stream(server, pid, label, f"r{n}")
    stream.thread.start()
    if job.get("id") is None and acked:
        params = {"options": FINETUNE, "corrections": acked[-FINETUNE_CASES:]}
        body = {"kind": "finetune", "model": "tiny_det", "params": params}
        r = _api(server, "POST", "/v1/jobs", json=body)
        if r.status_code == 202:  # 400 until the stream has stored a first correction
            job.update(id=r.json()["id"], kills=0)
    if job.get("id") is not None and job["kills"] >= MAX_KILLS_PER_JOB:
        state = _job_state(server, job["id"], 30.0)
        deadline = time.monotonic() + JOB_WAIT_S
        while state["state"] in ("queued", "running") and time.monotonic() < deadline:
            state = _job_state(server, job["id"], 30.0)
        job["done"] = [*job.get("done", []), job["id"]]
        job["id"] = None
    time.sleep(rng.uniform(0.2, 3.0))
    server.kill9()
    stream.stop.set()
    stream.thread.join(timeout=60)
    if job.get("id") is not None:
        job["kills"] += 1
    return stream


def run_kill9(data_dir: Path, models: dict[str, Path], rounds: int = 50, seed: int = 0) -> KillFigures:
    """``rounds`` kill -9 rounds on a fresh data folder; then every acknowledged correction is looked for."""
    rng, figures, job = random.Random(seed), KillFigures(rounds=rounds), {"id": None, "kills": 0}
    server = start_server(data_dir, models)
    pid, label = _setup(server)
    server.kill9()
    acked: dict[str, str] = {}
    unanswered: list[str] = []
    for n in range(rounds):
        stream = _round(server, pid, label, n, job, rng, list(acked.values()))
        acked.update(stream.acked)
        unanswered += stream.unanswered
    server.start()
    for key in unanswered:  # the client's retry after a lost answer: same key, stored at most once
        r = _api(server, "POST", "/v1/corrections", json={"prediction": pid, "label": label, "client_key": key})
        figures.unanswered_then_retried += 1
        if r.status_code not in (200, 201):
            figures.problems.append(f"retry {key}: {r.status_code} {r.text[:120]}")
    jobs = [*job.get("done", []), *([job["id"]] if job.get("id") else [])]
    for jid in jobs:
        state = _job_state(server, jid, 30.0)
        deadline = time.monotonic() + JOB_WAIT_S
        while state["state"] in ("queued", "running") and time.monotonic() < deadline:
            state = _job_state(server, jid, 30.0)
        figures.job_attempts.append(int(state["attempts"]))
        figures.jobs_succeeded += state["state"] == "succeeded"
        figures.jobs_not_finished += state["state"] in ("queued", "running")
        if state["state"] != "succeeded":
            figures.problems.append(f"job {jid}: {state['state']} {str(state.get('error'))[:200]}")
    server.stop()
    figures.jobs_submitted = len(jobs)
    _count_found(figures, data_dir, acked)
    return figures


def _count_found(figures: KillFigures, data_dir: Path, acked: dict[str, str]) -> None:
    ledger = Ledger(data_dir / "ledger.sqlite")
    rows = {r["client_key"]: r["id"] for r in ledger.query("SELECT id, client_key FROM corrections")}
    figures.acknowledged = len(acked)
    for key, cid in acked.items():
        path = data_dir / "corrections" / f"{cid}.nii.gz"
        if rows.get(key) == cid and path.is_file() and path.stat().st_size > 0:
            figures.found_after += 1
        else:
            figures.lost += 1
            figures.problems.append(f"lost correction {key} -> {cid}")
    ledger.close()
