"""Pure logic of the UQSeg Slicer module, on top of ``napari_uqseg.client`` and ``napari_uqseg.core``.

Modules: ``geometry`` (Slicer KJI arrays and IJK-to-RAS <-> NIfTI ``Volume``), ``logic`` (server calls),
``review_table`` (table rows and segment status), ``background`` (worker thread + result queue) and
``mrml_adapter``, the only one that imports ``slicer``/``vtk``. Nothing is imported here, so the package can be
imported before the module has installed ``napari-uqseg`` into Slicer's Python.
"""
