"""Every option dictionary is checked by ``core.options.check_known``: one wording naming source, unknown, known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.predict_options import PredictOptions
from napari_uqseg.engine.finetune import FinetuneOptions
from napari_uqseg.engine.make_model import build_method
from napari_uqseg.engine.methods.base import method_class, registered_methods
from napari_uqseg.engine.training import TrainConfig
from napari_uqseg.engine.tta import parse_tta
from napari_uqseg.engine.unet import UNetConfig
from napari_uqseg.server.job_params import check_fields

SITES = {
    "train": lambda d: TrainConfig.from_dict(d),
    "net": lambda d: UNetConfig.from_dict(d),
    "finetune params": lambda d: FinetuneOptions.from_dict(d),
    "mc_dropout options": lambda d: method_class("mc_dropout")(UNetConfig(channels=(4, 8)), d),
    "tta": lambda d: parse_tta(d),
    "options": lambda d: PredictOptions.from_dict(d),
    "params.options": lambda d: check_fields(FinetuneOptions, d, "params.options"),
}


@pytest.mark.parametrize("source", list(SITES))
def test_an_unknown_key_is_named_with_the_known_ones(source):
    with pytest.raises(InputError) as caught:
        SITES[source]({"bogus_key": 1})
    message = str(caught.value)
    assert message.startswith(f"{source}: unknown option(s) ['bogus_key']; known: [")
    assert caught.value.source == source


def test_an_unknown_name_lists_the_choices():
    with pytest.raises(InputError, match=r"--method: unknown method 'magic'; known: \[.*'mc_dropout'"):
        method_class("magic")
    with pytest.raises(InputError, match=r"tta: unknown TTA mode 'mirror'; known: \['none', 'flips'"):
        parse_tta("mirror")


CONFIGS = sorted((Path(__file__).parents[2] / "configs").rglob("*.json"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_shipped_config_builds_its_method(path):
    # the method is the longest registered name the file name starts with (checkpoint_ensemble_single_modal ...)
    method = max((m for m in registered_methods() if path.stem.startswith(m)), key=len)
    build_method(method, json.loads(path.read_text()), num_classes=3)  # raises on any unknown or bad option
