"""napari-uqseg: uncertainty-aware segmentation of medical images.

Layers (imports point down this list only, checked by import-linter over every subpackage):
``core`` (numpy) -> ``engine`` (torch) -> ``server`` -> ``client`` -> napari UI | ``bench`` -> ``cli`` -> ``testing``
(pytest fixtures); the Slicer module uses ``client`` and ``core``. See docs/architecture.md.
"""

__version__ = "0.1.0"
