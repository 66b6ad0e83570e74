"""Eight clients predicting at once all get correct results: requests queue for the device."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from napari_uqseg.client.remote import RemoteBackend
from napari_uqseg.core.sample_data import synthetic_case


def test_eight_concurrent_clients(uqseg_server):
    image, _ = synthetic_case((24, 24, 24), seed=51)
    with RemoteBackend(uqseg_server.url, uqseg_server.token) as backend:
        reference = backend.predict(image, "tiny_det").prediction

    def one(i: int):
        with RemoteBackend(uqseg_server.url, uqseg_server.token) as client:
            return client.predict(image, "tiny_det" if i % 2 == 0 else "tiny_mcd")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    assert len({r.id for r in results}) == 8
    for i, result in enumerate(results):
        pred = result.prediction
        assert pred.mask.shape == image.shape and pred.probabilities.shape == (3, *image.shape)
        if i % 2 == 0:  # the deterministic model must give exactly the reference answer under load
            np.testing.assert_array_equal(pred.mask.array, reference.mask.array)
            np.testing.assert_allclose(pred.maps["entropy"].array, reference.maps["entropy"].array, atol=1e-6)
        else:
            assert set(pred.maps) == {"entropy", "expected_entropy", "mutual_information", "class_std"}
    assert max(r.timings["queue"] for r in results) > 0  # some of them waited for the device rather than failing
