"""The backend server (protocol v1): FastAPI app, SQLite job ledger, executors and stores.

Start it with ``uqseg serve``; clients use ``napari_uqseg.client`` (``RemoteBackend``).
"""
