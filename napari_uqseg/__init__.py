"""napari-uqseg: uncertainty-aware segmentation of medical images.

Layers (imports point down this list only, checked by import-linter):
``core`` (numpy) -> ``engine`` (torch) -> ``server`` -> ``client`` -> napari UI / Slicer module.
"""

__version__ = "0.1.0"
