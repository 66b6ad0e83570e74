"""The demo figure shows the top review region inside the brain, not one in the air (core.demo_figure)."""

from __future__ import annotations

import numpy as np
from matplotlib.image import imread

from napari_uqseg.core.demo_figure import DemoLayers, brain_region, figure_region, save_demo_figure
from napari_uqseg.core.review import build_review
from napari_uqseg.core.review_hits import heldout_figures
from napari_uqseg.core.review_ranking import Region, ReviewRanking


def _head() -> np.ndarray:
    """A 24^3 reference: a tissue shell (label 1) around a fluid-filled centre (label 0, like a ventricle)."""
    grid = np.indices((24, 24, 24)) - 12
    radius = np.sqrt((grid**2).sum(axis=0))
    return ((radius < 9) & (radius >= 4)).astype(np.int64)


def _region(rank: int, centroid: tuple[float, float, float]) -> Region:
    lo = [int(c) - 1 for c in centroid]
    bbox = tuple((a, a + 3) for a in lo)
    return Region(rank, 1.0, 1.0, 27, centroid, bbox, int(centroid[2] + 0.5))


def test_brain_region_fills_the_fluid_inside_and_leaves_the_air_out():
    brain = brain_region(_head())
    assert brain[12, 12, 12] and brain[12, 12, 5]  # the centre (label 0) and the shell
    assert not brain[0, 0, 0] and not brain[12, 12, 23]


def test_figure_region_skips_a_better_ranked_region_in_the_air():
    ranking = ReviewRanking(
        "entropy", 2, 0.5, [0.0] * 24, [_region(1, (1.0, 1.0, 20.0)), _region(2, (12.0, 12.0, 12.2))]
    )
    assert figure_region(ranking, brain_region(_head())) == 1  # the second region: its centroid is in the brain
    assert figure_region(ranking, np.zeros((24, 24, 24), bool)) is None


def test_save_demo_figure_writes_a_png_from_a_constructed_case(tmp_path):
    reference = _head()
    mask = reference.copy()
    mask[11:14, 11:14, 11:14] = 1  # a wrong blob in the fluid at the centre
    u = np.where(mask != reference, 1.0, 0.0)
    ranking = build_review(u, mask, axis=2, threshold=0.5)
    figures = heldout_figures(mask, reference, u, ranking, {"0": "background", "1": "tissue"}, voxel_ml=0.008)
    assert figures["review"]["precision_top"] == 1.0  # the only region is exactly the wrong blob
    layers = DemoLayers(np.random.default_rng(0).random(mask.shape), mask, reference, u)
    path = save_demo_figure(layers, ranking, figures, tmp_path / "demo.png", top=5)
    assert imread(path).shape[2] in (3, 4)


def test_save_demo_figure_without_regions_shows_the_middle_slice(tmp_path):
    reference = _head()
    u = np.zeros(reference.shape)
    ranking = build_review(u, reference, axis=2, threshold=0.5)
    assert ranking.regions == []
    figures = heldout_figures(reference, reference, u, ranking, {"0": "background", "1": "tissue"}, voxel_ml=0.008)
    layers = DemoLayers(reference.astype(float), reference, reference, u)
    assert save_demo_figure(layers, ranking, figures, tmp_path / "none.png").is_file()
