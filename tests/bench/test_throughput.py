"""Server throughput against concurrent clients: every request of every client is answered and counted."""

from __future__ import annotations

from napari_uqseg.bench.throughput import throughput_curve


def test_throughput_curve_counts_every_request(tiny_models):
    points = throughput_curve(tiny_models["tiny_det"], clients=(1, 3), shape=(16, 16, 16), per_client=2)
    assert [p["clients"] for p in points] == [1, 3]
    for p in points:
        assert p["completed"] == p["requests"] == 2 * p["clients"], p["errors"]
        assert p["throughput_per_s"] > 0 and p["latency_max_s"] >= p["latency_median_s"] > 0
        assert p["received_bytes_median"] > 0
