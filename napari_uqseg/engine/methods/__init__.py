"""One module per uncertainty method; importing this package registers all of them."""

from napari_uqseg.engine.methods import deep_ensemble, deterministic, masksembles, mc_dropout  # noqa: F401
