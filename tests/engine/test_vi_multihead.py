"""VI-MH: shapes in 2-D/3-D, the base running once per window, training end to end, save/load exactness."""

import nibabel as nib
import numpy as np
import pytest
import torch

from napari_uqseg.engine.layers.lrt_conv import LRTConv
from napari_uqseg.engine.make_model import train
from napari_uqseg.engine.methods.base import method_class
from napari_uqseg.engine.model_folder import load_model, save_model
from napari_uqseg.engine.prediction_files import predict_file
from napari_uqseg.engine.unet import UNetConfig

OPTIONS = {"heads": 2, "samples": 2, "train_samples": 2}


@pytest.mark.parametrize(("dims", "split"), [(2, 1), (3, 1), (3, 2)])
def test_shapes_and_one_base_pass_per_window(dims, split):
    method = method_class("vi_multihead")(
        UNetConfig(spatial_dims=dims, channels=(4, 8, 16)), {**OPTIONS, "split": split}
    )
    calls = []
    method.nets["base"].encoders[0].register_forward_hook(lambda *_: calls.append(1))
    head_rows = []  # windows x samples that head 1's output conv saw
    method.heads()[1].out.register_forward_hook(lambda _m, args, _o: head_rows.append(args[0].shape[0]))
    x = torch.randn((3, 1) + (16,) * dims)
    with torch.no_grad():
        stats = method.window_statistics(x)
    assert stats["mean_prob"].shape == (3, 3) + (16,) * dims
    assert stats["expected_entropy"].shape == (3, 1) + (16,) * dims
    assert torch.allclose(stats["mean_prob"].sum(1), torch.ones(1))
    assert len(calls) == 1 and sum(head_rows) == 3 * 2  # base once, each head S samples of every window
    assert len(method.nets["base"].decoders) == 2 - split
    assert float((stats["mean_sq_prob"] - stats["mean_prob"] ** 2).max()) > 0  # heads/samples differ
    base, head = method.cost_shares()
    assert 0 < base < 1 and 0 < head < 2
    assert method.forward_passes() == pytest.approx(base + 4 * head)


def test_bad_split_is_rejected():
    from napari_uqseg.core.errors import InputError

    with pytest.raises(InputError, match="split"):
        method_class("vi_multihead")(UNetConfig(channels=(4, 8)), {"split": 2})


def test_train_predict_and_exact_save_load(synthetic_dataset, tiny_config, tmp_path):
    tiny_config["method"] = OPTIONS
    model = train("vi_multihead", synthetic_dataset, tmp_path / "model", tiny_config)
    loaded = load_model(model)
    assert loaded.extra_state()["head_share"] > 0
    assert all(m.sample for m in loaded.nets.modules() if isinstance(m, LRTConv))
    save_model(loaded, tmp_path / "again", {"0": "bg"}, {})
    again = load_model(tmp_path / "again")
    fresh = method_class("vi_multihead")(loaded.net_config, OPTIONS)
    x = torch.randn(1, 1, 16, 16, 16)
    outs = []
    for m in (loaded, again, fresh):
        torch.manual_seed(7)
        with torch.no_grad():
            outs.append(m.window_statistics(x)["mean_prob"])
    assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(outs[0], outs[2])  # the weights were really loaded
    written = predict_file(model, synthetic_dataset / "imagesTr" / "synth_001.nii.gz", tmp_path / "pred")
    mi = np.asarray(nib.load(written["mutual_information"]).dataobj)
    assert mi.shape == (24, 24, 24) and np.isfinite(mi).all() and mi.max() > 0


def test_the_plateau_check_pools_validation_samples_per_head(synthetic_dataset, tiny_config, tmp_path, monkeypatch):
    from napari_uqseg.engine.methods.vi_multihead import VIMultiHead

    pooled, fit = VIMultiHead.pooled_statistics, VIMultiHead.fit
    counts, in_fit = [], []

    def counting(self, x, samples):
        counts.append(samples)
        return pooled(self, x, samples)

    def fit_and_count(self, *args):
        out = fit(self, *args)
        in_fit.extend(counts)  # what follows the fit (the member check) predicts with all samples
        return out

    monkeypatch.setattr(VIMultiHead, "pooled_statistics", counting)
    monkeypatch.setattr(VIMultiHead, "fit", fit_and_count)
    tiny_config["train"].update(stop_rule="plateau", val_every=3)
    tiny_config["method"] = {"heads": 2, "samples": 3, "validation_samples": 2}
    model = train("vi_multihead", synthetic_dataset, tmp_path / "model", tiny_config)
    assert in_fit and set(in_fit) == {2}  # every validation window, 2 of the 3 samples per head
    counts.clear()
    x = torch.randn(1, 1, 16, 16, 16)
    method = load_model(model)
    torch.manual_seed(0)
    with torch.no_grad():
        full = method.window_statistics(x)
    torch.manual_seed(0)
    with torch.no_grad():
        again = pooled(method, x, 3)
    assert counts == [3] and all(torch.equal(full[k], again[k]) for k in full)
