"""Bounded load: concurrent requests, queued predictions and jobs, and the cost of one prediction.

Beyond a bound the server answers 503 with ``Retry-After`` (``BusyError``) instead of queueing without
end; ``/v1/health`` is never counted, so it answers while the server is saturated.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from napari_uqseg.core.errors import InputError, UQSegError
from napari_uqseg.core.wire import PROTOCOL_VERSION

UNCOUNTED_PATHS = ("/v1/health",)


@dataclass
class LoadLimits:
    """Bounds of one server (``uqseg serve`` options of the same names).

    Attributes
    ----------
    max_requests : int
        Requests handled at once (more get 503); health checks are not counted.
    max_queued_predictions : int
        Predictions waiting for the device (not counting the running one).
    max_queued_jobs : int
        Jobs in state QUEUED.
    max_forward_passes : int
        Cost cap of one prediction: sliding windows x forward passes per window (samples, members).
    max_sw_batch_size : int
        Largest ``sw_batch_size`` option (device memory per step).
    prediction_wait_s : float
        Longest a request waits for the device before it gets 503.
    retry_after_s : int
        ``Retry-After`` seconds suggested with a 503.
    min_free_mb : int
        Free disk space the data folder keeps; writes that would go below get 507.
    """

    max_requests: int = 64
    max_queued_predictions: int = 16
    max_queued_jobs: int = 32
    max_forward_passes: int = 20000
    max_sw_batch_size: int = 16
    prediction_wait_s: float = 600.0
    retry_after_s: int = 5
    min_free_mb: int = 512

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


class BusyError(UQSegError):
    """The server is at a load bound; try again after ``retry_after`` seconds (HTTP 503)."""

    def __init__(self, source: str, problem: str, retry_after: int = 5) -> None:
        self.source, self.problem, self.retry_after = source, problem, int(retry_after)
        super().__init__(f"{source}: {problem}")


def busy_body(source: str, message: str) -> bytes:
    error = {"status": 503, "code": "busy", "source": source, "message": message}
    return json.dumps({"error": error, "protocol": PROTOCOL_VERSION}).encode()


@dataclass
class RequestCounter:
    """Requests in flight now, the most at once so far, and how many were refused (shared with health)."""

    limit: int
    in_flight: int = 0
    peak: int = 0
    refused: int = 0


class ConcurrencyLimitMiddleware:
    """Answer 503 + ``Retry-After`` while ``counter.limit`` requests are already in flight (health excluded)."""

    def __init__(self, app: ASGIApp, counter: RequestCounter, retry_after: int = 5) -> None:
        self.app, self.counter, self.retry_after = app, counter, retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNCOUNTED_PATHS:
            await self.app(scope, receive, send)
            return
        counter = self.counter
        if counter.in_flight >= counter.limit:  # one event loop: no lock needed between check and increment
            counter.refused += 1
            body = busy_body("server", f"{counter.in_flight} requests in progress (limit {counter.limit}); retry later")
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(self.retry_after).encode()),
            ]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        counter.in_flight += 1
        counter.peak = max(counter.peak, counter.in_flight)
        try:
            await self.app(scope, receive, send)
        finally:
            counter.in_flight -= 1


@lru_cache(maxsize=64)
def passes_per_window(model_dir: Path) -> float:
    """Full-network forward passes one sliding window costs with this model version (samples, members)."""
    from napari_uqseg.engine.methods.base import method_class
    from napari_uqseg.engine.model_folder import read_card
    from napari_uqseg.engine.unet import UNetConfig

    card = read_card(model_dir)
    net = UNetConfig.from_dict({**card.net, "channels": [4, 8]})  # pass counts do not depend on the width
    try:
        return float(method_class(card.method)(net, card.options).forward_passes())
    except Exception:  # noqa: BLE001  (a method that cannot be built small: count its samples)
        return float(card.options.get("samples", 1) or 1)


def prediction_cost(model_dir: Path, shape: tuple[int, ...], overlap: float) -> float:
    """Forward passes a prediction of an image of ``shape`` costs: windows x passes per window."""
    from napari_uqseg.engine.inference import _window_count
    from napari_uqseg.engine.model_folder import read_card

    patch = tuple(read_card(model_dir).patch_size)
    return _window_count(tuple(shape), patch, overlap) * passes_per_window(model_dir)


def check_prediction_cost(cost: float, limits: LoadLimits) -> None:
    """Refuse (400, not 503: retrying does not help) a prediction over ``max_forward_passes``."""
    if not math.isfinite(cost) or cost > limits.max_forward_passes:
        raise InputError(
            "options.overlap",
            f"this prediction would cost {cost:.0f} forward passes (limit {limits.max_forward_passes}); "
            "use a smaller overlap or a smaller image",
        )
