"""``POST /v1/images/dicom`` streams the zip to disk like a NIfTI upload: a large body never sits in memory."""

from __future__ import annotations

import requests

from napari_uqseg.bench.peak_rss import PeakRSS

MiB = 1024 * 1024
BODY_MIB = 160
MAX_GROWTH_MIB = 64


def test_a_large_dicom_zip_body_is_streamed_to_disk(uqseg_server):
    body = bytes(BODY_MIB * MiB)  # not a zip: read from its end, refused without holding the body
    with PeakRSS(uqseg_server.process.pid) as rss:
        response = requests.post(
            f"{uqseg_server.url}/v1/images/dicom",
            data=body,
            headers={"Authorization": f"Bearer {uqseg_server.token}", "Content-Type": "application/zip"},
            timeout=300,
        )
    assert response.status_code == 400, response.text
    assert "not a readable zip archive" in response.json()["error"]["message"]
    assert rss.growth_mib < MAX_GROWTH_MIB, f"server RSS grew {rss.growth_mib:.0f} MiB for a {BODY_MIB} MiB body"
    leftovers = list((uqseg_server.data_dir / "images").glob(".upload-*"))
    assert leftovers == []  # the streamed copy is removed once read
