"""Shared test setup: small CPU budgets, the ``slow`` marker, tiny synthetic datasets."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tests use tiny volumes: threads only add contention


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (benchmarks cover it)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory: pytest.TempPathFactory):
    """An 8-case MSD-layout synthetic dataset (24^3 voxels, 3 classes), written once per session."""
    from napari_uqseg.core.sample_data import write_synthetic_dataset

    return write_synthetic_dataset(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture()
def tiny_config() -> dict:
    """Network and training settings that train any method in seconds (deep copy per test)."""
    import copy

    from napari_uqseg.bench.tiny_models import TINY_CONFIG

    return copy.deepcopy(TINY_CONFIG)
