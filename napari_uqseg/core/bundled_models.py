"""Models shipped inside the package (``napari_uqseg/resources``), usable on first start with no training."""

from __future__ import annotations

from pathlib import Path

#: the name the starter model is registered under in a data folder (server ledger, local backend)
STARTER_MODEL_NAME = "brain-starter"


def starter_model_dir() -> Path:
    """Folder of the shipped starter model (``model.json``, weights, ``MODEL_CARD.md``).

    The MNI152 grey/white-matter model trained by ``scripts/train_starter_model.py``; see its card.
    """
    return Path(__file__).resolve().parent.parent / "resources" / "starter_brain"
