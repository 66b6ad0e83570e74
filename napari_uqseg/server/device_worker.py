"""One worker thread per device: predictions queue for the device instead of competing for it."""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_uqseg.core.progress import no_progress
from napari_uqseg.core.records import Prediction
from napari_uqseg.core.volume import Volume

if TYPE_CHECKING:
    from napari_uqseg.server.device_lease import DeviceLease


class ModelCache:
    """Loaded models, least recently used dropped first (one resident copy per version per device).

    Parameters
    ----------
    device : str
        Torch device string the models are moved to.
    size : int
        Models kept resident.
    """

    def __init__(self, device: str, size: int = 2) -> None:
        self.device = device
        self.size = max(1, size)
        self._models: OrderedDict[Path, Any] = OrderedDict()

    def get(self, model_dir: Path) -> Any:
        from napari_uqseg.engine.model_folder import load_model

        if model_dir in self._models:
            self._models.move_to_end(model_dir)
            return self._models[model_dir]
        method = load_model(model_dir, self.device)
        self._models[model_dir] = method
        while len(self._models) > self.size:
            self._models.popitem(last=False)
            _free_device_memory()
        return method


def _free_device_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class DeviceWorker:
    """A single thread that owns the device; ``submit`` returns a future.

    Parameters
    ----------
    device : str
        ``"cpu"`` or ``"cuda[:N]"`` (already resolved).
    cache_size : int
        Models kept loaded.
    lease : DeviceLease or None
        The device's lease, held while predictions wait or run (a job pauses meanwhile); ``None``: no lease.
    """

    def __init__(self, device: str, cache_size: int = 2, lease: DeviceLease | None = None) -> None:
        self.device = device
        self.cache = ModelCache(device, cache_size)
        self.lease = lease
        self.running = False
        self._queue: queue.Queue[tuple[Callable[[], Any], Future] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"device-{device}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, future = item
            if future.set_running_or_notify_cancel():
                self._run_one(fn, future)
            if self.lease is not None and self._queue.empty():
                self.lease.release()  # kept from one prediction to the next while more are queued

    def _run_one(self, fn: Callable[[], Any], future: Future) -> None:
        self.running = True
        try:
            if self.lease is not None:
                self.lease.acquire()  # waits while another process (a second server) predicts on the device
            future.set_result(fn())
        except BaseException as exc:  # noqa: BLE001  (handed to the waiting request)
            future.set_exception(exc)
        finally:
            self.running = False

    def submit(self, fn: Callable[[], Any]) -> Future:
        future: Future = Future()
        self._queue.put((fn, future))
        return future

    def queued(self) -> int:
        """Requests waiting for the device (not counting the one running)."""
        return self._queue.qsize()

    def pending(self) -> int:
        """Predictions waiting for or running on the device."""
        return self._queue.qsize() + int(self.running)

    def predict(
        self,
        model_dir: Path,
        image: Volume,
        overlap: float = 0.25,
        sw_batch_size: int = 1,
        tta: str = "none",
        precision: str = "auto",
    ) -> Future:
        """Queue a prediction (``tta``: a test-time augmentation mode; ``precision``: ``engine.precision``); the
        future yields a ``Prediction`` with ``timings['queue']`` added."""
        queued_at = time.perf_counter()

        def run() -> Prediction:
            from napari_uqseg.engine.inference import predict_volume
            from napari_uqseg.engine.tta import with_tta

            waited = time.perf_counter() - queued_at
            start = time.perf_counter()
            method = self.cache.get(model_dir)
            loaded = time.perf_counter() - start
            prediction = predict_volume(
                with_tta(method, tta), image, overlap, sw_batch_size, no_progress, precision=precision
            )
            prediction.timings.update({"queue": waited, "load_model": loaded})
            return prediction

        return self.submit(run)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)
        if self.lease is not None and not self._thread.is_alive():
            self.lease.release()
