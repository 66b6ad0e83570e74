"""The fault and load suite at CI size (``uqseg reliability --size full`` gives the figures of docs/reliability.md)."""

from __future__ import annotations

import pytest

from napari_uqseg.bench.reliability.bad_inputs import run_bad_inputs
from napari_uqseg.bench.reliability.disk_full import run_disk_full
from napari_uqseg.bench.reliability.kill9 import run_kill9
from napari_uqseg.bench.reliability.load import run_load
from napari_uqseg.testing.server import start_server


@pytest.fixture(scope="module")
def models(tiny_models):
    return {"tiny_det": tiny_models["tiny_det"]}


def test_generated_bad_inputs_get_4xx_never_5xx(models, tmp_path):
    server = start_server(tmp_path / "data", models)
    try:
        figures = run_bad_inputs(server)
    finally:
        server.stop()
    assert figures.tried >= 200
    assert figures.answered_5xx == 0 and figures.hangs == 0 and figures.accepted == 0, figures.problems
    assert figures.refused_4xx_with_message == figures.tried, figures.problems
    assert figures.peak_rss_growth_mib < 100


def test_concurrent_clients_get_answers_or_503_with_retry_after(models, tmp_path):
    limits = ["--max-requests", "4", "--max-queued-predictions", "2"]
    server = start_server(tmp_path / "data", models, extra_args=limits)
    try:
        figures = run_load(server, clients=8, seconds=8.0)
    finally:
        server.stop()
    assert figures.served > 0
    assert figures.failures == 0 and figures.health_failures == 0, figures.problems
    assert figures.busy_503_with_retry_after > 0  # 8 clients over a bound of 4 requests: the bound was met


def test_kill9_rounds_lose_no_acknowledged_correction(models, tmp_path):
    figures = run_kill9(tmp_path / "data", models, rounds=3, seed=1)
    assert figures.acknowledged > 0
    assert figures.lost == 0, figures.problems
    assert figures.jobs_submitted >= 1 and figures.jobs_succeeded == figures.jobs_submitted, figures.problems


def test_full_disk_loses_no_acknowledged_correction(models, tmp_path):
    figures = run_disk_full(tmp_path, models)
    if figures.skipped:
        pytest.skip(figures.skipped)
    assert figures.refused_507 > 0 and figures.other_errors == 0, figures.problems
    assert figures.acknowledged > 0 and figures.lost == 0
    assert figures.stores_again_after_freeing
