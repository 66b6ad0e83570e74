"""Masksembles masks: the paper's overlap, persistence through save/load, one mask per batch chunk."""

import numpy as np
import pytest
import torch

from napari_uqseg.core.errors import InputError
from napari_uqseg.engine.layers.masksembles import MasksemblesLayer, generate_masks, mask_overlap
from napari_uqseg.engine.methods.base import method_class
from napari_uqseg.engine.unet import UNetConfig


@pytest.mark.parametrize(("channels", "n", "scale"), [(64, 4, 2.0), (128, 4, 3.0), (320, 10, 2.0)])
def test_mask_overlap_close_to_paper_value(channels, n, scale):
    masks = generate_masks(channels, n, scale, seed=1)
    assert masks.shape == (n, channels)
    assert masks.any(axis=0).all(), "every channel is used by some mask"
    expected = 1 / (2 * scale - 1)
    assert abs(mask_overlap(masks) - expected) < 0.08


def test_bad_scale_is_rejected():
    with pytest.raises(InputError, match="scale"):
        generate_masks(32, 4, 0.5)


def test_each_batch_chunk_uses_its_own_mask():
    layer = MasksemblesLayer(16, n=4, scale=2.0, seed=0)
    x = torch.ones(8, 16, 3, 3)
    out = layer(x)
    for j in range(4):
        expected = layer.masks[j].view(1, 16, 1, 1).expand(2, 16, 3, 3)
        assert torch.equal(out[2 * j : 2 * j + 2], expected)
    with pytest.raises(RuntimeError, match="multiple of 4"):
        layer(torch.ones(6, 16, 3, 3))


def test_masks_survive_save_and_load(tmp_path):
    config = UNetConfig(channels=(8, 16, 32))
    first = method_class("masksembles")(config, {"seed": 3})
    first.save_weights(tmp_path)
    other = method_class("masksembles")(config, {"seed": 99})  # different masks before loading
    before = [m.masks.clone() for m in other.nets.modules() if isinstance(m, MasksemblesLayer)]
    other.load_weights(tmp_path)
    saved = [m.masks for m in first.nets.modules() if isinstance(m, MasksemblesLayer)]
    loaded = [m.masks for m in other.nets.modules() if isinstance(m, MasksemblesLayer)]
    assert len(saved) == 2  # bottleneck + the decoder stage before the last
    assert any(not torch.equal(a, b) for a, b in zip(before, saved, strict=True))
    for a, b in zip(saved, loaded, strict=True):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(saved[0].numpy(), loaded[0].numpy())


def test_head_input_is_unmasked_unless_asked():
    config = UNetConfig(channels=(8, 16, 32))
    default = method_class("masksembles")(config, {}).nets["net"]
    assert isinstance(default.encoder_layers[-1], MasksemblesLayer)
    assert isinstance(default.decoder_layers[0], MasksemblesLayer)
    assert not isinstance(default.decoder_layers[-1], MasksemblesLayer), "the 1x1 head sees every channel"
    masked = method_class("masksembles")(config, {"mask_head_input": True}).nets["net"]
    assert isinstance(masked.decoder_layers[-1], MasksemblesLayer)
