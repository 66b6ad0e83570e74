"""Streaming statistics equal the naive computation over stored samples."""

import numpy as np
import torch

from napari_uqseg.core.uncertainty import uncertainty_maps
from napari_uqseg.engine.statistics import SampleStatistics


def _naive_maps(samples: np.ndarray) -> dict[str, np.ndarray]:
    """Reference: every sample kept, ``samples`` (M, C, *S)."""
    mean = samples.mean(0)
    pe = -(mean * np.log(np.clip(mean, 1e-12, None))).sum(0)
    ee = (-(samples * np.log(np.clip(samples, 1e-12, None))).sum(1)).mean(0)
    predicted = mean.argmax(0)
    chosen = np.take_along_axis(samples, predicted[None, None].repeat(len(samples), 0), 1)[:, 0]
    return {"entropy": pe, "expected_entropy": ee, "mutual_information": pe - ee, "class_std": chosen.std(0, ddof=1)}


def test_streaming_statistics_match_naive_computation():
    gen = torch.Generator().manual_seed(0)
    samples = torch.softmax(torch.randn(7, 1, 3, 5, 6, 4, generator=gen) * 3, dim=2)  # (M, B, C, *S)
    stats = SampleStatistics()
    stats.add(samples[:3], stacked=True)  # a stacked chunk, then single samples: both paths
    for m in range(3, 7):
        stats.add(samples[m])
    result = stats.result()
    maps = uncertainty_maps(
        result["mean_prob"][0].numpy(), result["mean_sq_prob"][0].numpy(), result["expected_entropy"][0, 0].numpy(), 7
    )
    naive = _naive_maps(samples[:, 0].double().numpy())
    for name, expected in naive.items():
        np.testing.assert_allclose(maps[name], expected, atol=2e-5, err_msg=name)


def test_memory_is_independent_of_sample_count():
    stats = SampleStatistics()
    for _ in range(20):
        stats.add(torch.full((1, 2, 4, 4), 0.5))
    held = [t for t in (stats._sum_p, stats._sum_p2, stats._sum_h) if t is not None]
    assert sum(t.numel() for t in held) == 2 * 16 + 2 * 16 + 16
    assert stats.n == 20


def test_single_sample_gives_only_entropy():
    prob = np.array([[0.5, 1.0], [0.5, 0.0]])
    maps = uncertainty_maps(prob, prob**2, np.zeros(2), n_samples=1)
    assert set(maps) == {"entropy"}
    np.testing.assert_allclose(maps["entropy"], [np.log(2), 0.0], atol=1e-6)
