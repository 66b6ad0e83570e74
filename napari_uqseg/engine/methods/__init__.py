"""One module per uncertainty method; importing this package registers all of them."""

from napari_uqseg.engine.methods import (  # noqa: F401
    checkpoint_ensemble,
    deep_ensemble,
    deterministic,
    dudes,
    masksembles,
    mc_dropout,
    partial_bayes,
    swa,
    vi_multihead,
)
