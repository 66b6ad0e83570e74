"""The sections of the UQSeg panel, each thin Qt glue over ``UQSegLib`` (which holds the logic, tested outside Slicer).

``models`` (model and version choice, get a model, promote/rollback), ``review`` (review table, region
states, submit), ``jobs`` (fine-tune and train jobs, polled by a timer), ``calibrated`` (TTA choice, volumes
with calibrated intervals, the contours' guarantee) and ``worklist`` (a triage's cases); ``client_install``
installs the light client into Slicer's Python on first use.
Each takes the ``UQSegWidget`` and uses its ``ui``, ``logic`` and ``run`` (the worker thread). These modules
import ``qt`` and ``slicer``, never ``napari_uqseg`` at module level: the client may not be installed yet.
"""
