"""Send the bad-request corpus to a real server; count 4xx-with-message, 5xx, hangs and memory growth."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import requests

from napari_uqseg.bench.peak_rss import PeakRSS
from napari_uqseg.bench.reliability.corpus import BadRequest, upload_cases
from napari_uqseg.bench.reliability.corpus_json import correction_cases, job_cases, prediction_cases, route_cases
from napari_uqseg.core.nifti_io import nifti_bytes
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.server.launcher import ServerHandle

HANG_S = 60.0  # an answer later than this counts as a hang


@dataclass
class BadInputFigures:
    """Outcome of one corpus run."""

    tried: int = 0
    refused_4xx_with_message: int = 0
    answered_5xx: int = 0
    hangs: int = 0
    accepted: int = 0
    peak_rss_growth_mib: float = 0.0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "problems"} | {"problems": self.problems[:20]}


def prepare(server: ServerHandle, session: requests.Session) -> tuple[str, str, tuple[int, ...], np.ndarray]:
    """Upload one good image and predict it: ``(sha, prediction id, shape, affine)``."""
    image, _ = synthetic_case((20, 20, 20), seed=99)
    data = nifti_bytes(image, dtype=np.float32)
    sha = hashlib.sha256(data).hexdigest()
    session.put(f"{server.url}/v1/images/{sha}", data=data, timeout=HANG_S).raise_for_status()
    r = session.post(f"{server.url}/v1/predictions", json={"image": sha, "model": "tiny_det"}, timeout=HANG_S)
    r.raise_for_status()
    return sha, r.json()["id"], image.shape, image.affine


def build_corpus(sha: str, pid: str, shape: tuple[int, ...], affine: np.ndarray, json_limit: int) -> list[BadRequest]:
    cases = upload_cases() + prediction_cases(sha) + correction_cases(pid, shape, affine) + job_cases()
    cases += route_cases(json_limit)
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "corpus case names must be distinct"
    return cases


def send(session: requests.Session, url: str, case: BadRequest, pid: str) -> requests.Response:
    kwargs: dict[str, Any] = {"headers": case.headers, "timeout": (5, HANG_S)}
    if case.json is not None:
        kwargs["json"] = case.json
    elif case.body is not None:
        kwargs["data"] = case.body
    return session.request(case.method, url + case.path.replace("{pid}", pid), **kwargs)


def classify(figures: BadInputFigures, case: BadRequest, response: requests.Response | None) -> None:
    if response is None:
        figures.hangs += 1
        figures.problems.append(f"{case.name}: no answer within {HANG_S:.0f} s")
        return
    status = response.status_code
    if status >= 500:
        figures.answered_5xx += 1
        figures.problems.append(f"{case.name}: {status} {response.text[:200]}")
        return
    if status < 400:
        figures.accepted += 1
        figures.problems.append(f"{case.name}: accepted ({status})")
        return
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = ""
    if message:
        figures.refused_4xx_with_message += 1
    else:
        figures.problems.append(f"{case.name}: {status} without a message")


def run_bad_inputs(server: ServerHandle, json_limit: int = 64 * 1024 * 1024) -> BadInputFigures:
    """Send every corpus case once (after one warm-up prediction) and measure the server's RSS growth."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {server.token}"
    sha, pid, shape, affine = prepare(server, session)
    cases = build_corpus(sha, pid, shape, affine, json_limit)
    figures = BadInputFigures()
    with PeakRSS(server.process.pid) as rss:
        for case in cases:
            figures.tried += 1
            try:
                response = send(session, server.url, case, pid)
            except requests.exceptions.Timeout:
                response = None
            except requests.exceptions.ConnectionError as exc:  # the server closed on us: count as a failure
                figures.answered_5xx += 1
                figures.problems.append(f"{case.name}: connection error {exc.__class__.__name__}")
                continue
            classify(figures, case, response)
    figures.peak_rss_growth_mib = round(rss.growth_mib, 1)
    session.close()
    return figures
