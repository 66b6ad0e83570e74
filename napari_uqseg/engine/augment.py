"""nnU-Net's default training augmentations, applied to each sampled patch with MONAI's random transforms."""

from __future__ import annotations

import math

import numpy as np
from monai.transforms import (
    Compose,
    RandAdjustContrastd,
    RandAffined,
    RandFlipd,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandScaleIntensityd,
    RandScaleIntensityFixedMeand,
    RandSimulateLowResolutiond,
)

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.options import check_known

# nnU-Net v2's default probabilities (DefaultPreprocessor/nnUNetTrainer.get_training_transforms); rotation and
# scaling use its ranges too. "none" turns everything off (the fixed-patch recipe of earlier results).
RECIPES: dict[str, dict[str, float]] = {
    "nnunet": {
        "rotate": 0.2,
        "scale": 0.2,
        "noise": 0.1,
        "blur": 0.2,
        "brightness": 0.15,
        "contrast": 0.15,
        "low_resolution": 0.25,
        "gamma": 0.3,
        "mirror": 0.5,
    },
    "none": {},
}

SPATIAL = ("rotate", "scale", "mirror")


class PatchAugmenter:
    """Random spatial and intensity changes of one image/label patch pair.

    Spatial transforms move image and label together (label by nearest neighbour); intensity transforms
    touch the image only. Draws are reproducible: ``__call__`` takes the seed, so a sampler that draws the
    seed from its own RNG resumes with the same augmentations.

    Parameters
    ----------
    probabilities : dict
        Probability per augmentation name (keys of ``RECIPES["nnunet"]``); a missing name is off.
    spatial_dims : int
        2 or 3.
    """

    def __init__(self, probabilities: dict[str, float], spatial_dims: int = 3) -> None:
        check_known("train.augment", probabilities, RECIPES["nnunet"])
        p = {name: float(probabilities.get(name, 0.0)) for name in RECIPES["nnunet"]}
        both = ["image", "label"]
        rotate = (math.pi / 6,) * (1 if spatial_dims == 2 else 3)  # +-30 degrees
        transforms = []
        if p["rotate"] or p["scale"]:
            # one affine: rotation and scaling each happen with their own probability in nnU-Net; MONAI draws
            # both in one transform, so it fires with the larger probability
            transforms.append(
                RandAffined(
                    both,
                    prob=max(p["rotate"], p["scale"]),
                    rotate_range=rotate if p["rotate"] else None,
                    scale_range=(-0.3, 0.4) if p["scale"] else None,  # zoom 0.7-1.4
                    mode=("bilinear", "nearest"),
                    padding_mode="border",
                )
            )
        intensity = [
            ("noise", lambda q: RandGaussianNoised("image", prob=q, std=0.1)),
            ("blur", lambda q: RandGaussianSmoothd("image", (0.5, 1.0), (0.5, 1.0), (0.5, 1.0), prob=q)),
            ("brightness", lambda q: RandScaleIntensityd("image", factors=0.25, prob=q)),
            ("contrast", lambda q: RandScaleIntensityFixedMeand("image", factors=0.25, prob=q)),
            ("low_resolution", lambda q: RandSimulateLowResolutiond("image", prob=q, zoom_range=(0.5, 1.0))),
            ("gamma", lambda q: RandAdjustContrastd("image", prob=q, gamma=(0.7, 1.5), retain_stats=True)),
        ]
        transforms += [make(p[name]) for name, make in intensity if p[name]]
        if p["mirror"]:
            transforms += [RandFlipd(both, prob=p["mirror"], spatial_axis=axis) for axis in range(spatial_dims)]
        self.probabilities = p
        self.compose = Compose(transforms) if transforms else None

    @classmethod
    def from_recipe(cls, name: str, spatial_dims: int = 3) -> PatchAugmenter | None:
        """The named recipe (``"nnunet"`` or ``"none"``); ``None`` when it has no augmentation."""
        if name not in RECIPES:
            raise InputError("train.augment", f"unknown recipe {name!r}; known: {sorted(RECIPES)}")
        return cls(RECIPES[name], spatial_dims) if RECIPES[name] else None

    def __call__(self, image: np.ndarray, label: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Augment ``image`` (float32) and ``label`` (integer), both ``(*patch)``; shapes are kept."""
        if self.compose is None:
            return image, label
        self.compose.set_random_state(seed=seed)
        out = self.compose({"image": image[None].astype(np.float32), "label": label[None].astype(np.float32)})
        aug_image = np.asarray(out["image"], dtype=np.float32)[0]
        aug_label = np.rint(np.asarray(out["label"])[0]).astype(label.dtype)
        return aug_image, aug_label
