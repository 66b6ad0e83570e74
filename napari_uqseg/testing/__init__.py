"""Test-only helpers: pytest fixtures (a real loopback ``uqseg serve``, an Orthanc PACS) and DICOM test series.

Imports pytest; the top layer of the import contracts, so no runtime module can import it. Sample data is
``core.sample_data``; the tiny models are ``bench.tiny_models``.
"""
