"""The HTTP routes of protocol v1, one module (one ``APIRouter``) per resource, mounted under ``/v1``.

=================  ==================================================================
module             resource
=================  ==================================================================
``service_info``   health (no token), capabilities, audit log
``images``         image uploads (NIfTI, DICOM zip) and downloads
``predictions``    predictions and their output volumes
``corrections``    corrected label maps
``models``         models, versions, promote/rollback, catalogue, archives, datasets
``jobs``           background jobs: start, status (long poll), event stream, cancel, worklists
``pacs``           the server's DICOMweb PACS: browse, predict by UID, triage
=================  ==================================================================

A route is a thin adapter: it checks the body with a ``requests.RequestBody`` model, calls one
``Service`` (or ``DicomService``) method and answers with ``requests.ok``. Plain ``def`` routes run in the
thread pool, so ledger reads and writes never run on the event loop; a route is ``async`` only to stream
a body or to wait without holding a thread. Errors are exceptions, answered by ``server.error_handlers``.
To add a route: add it to the module of its resource (or a new module listed in :data:`RESOURCE_ROUTERS`).
"""

from __future__ import annotations

from napari_uqseg.server.routes import corrections, images, jobs, models, pacs, predictions, service_info

RESOURCE_ROUTERS = (
    service_info.router,
    images.router,
    predictions.router,
    corrections.router,
    models.router,
    jobs.router,
    pacs.router,
)
