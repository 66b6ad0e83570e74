"""napari: pick a study and series from the server's PACS (a real Orthanc), predict, see image, mask and map."""

import io

import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.core.volume import Volume
from napari_uqseg.testing.dicom_series import PATIENT_ID, oriented_affine, quantised, series_datasets, to_bytes

pytestmark = pytest.mark.gui
LONG_MS = 120_000


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    from napari_uqseg.napari_ui.settings import CONFIG_DIR_ENV

    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "config"))


def test_series_picked_from_the_pacs_is_predicted_and_shown(make_napari_viewer, qtbot, orthanc, pacs_server):
    image, _ = synthetic_case((20, 18, 16), 11)
    volume = quantised(Volume(image.array, oriented_affine("coronal")))
    datasets = series_datasets(volume, descending=True)
    client = DICOMwebClient(orthanc.dicomweb)
    client.store_instances([pydicom.dcmread(io.BytesIO(to_bytes(ds))) for ds in datasets])
    study, series = str(datasets[0].StudyInstanceUID), str(datasets[0].SeriesInstanceUID)

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-uqseg", "From a PACS")
    widget.connection.url.setText(pacs_server.url)
    widget.connection.token.setText(pacs_server.token)
    widget.connection.connect_button.click()
    qtbot.waitUntil(lambda: widget.studies.count() > 0 and widget.worker is None, timeout=LONG_MS)
    rows = [widget.studies.item(i) for i in range(widget.studies.count())]
    assert all(PATIENT_ID not in row.text() and "Janeprivate" not in row.text() for row in rows)
    [row] = [r for r in rows if r.data(0x0100) == study]
    widget.studies.setCurrentItem(row)
    qtbot.waitUntil(lambda: widget.series.count() == 1 and widget.worker is None, timeout=LONG_MS)
    assert widget.series.item(0).data(0x0100) == series
    widget.model_combo.setCurrentText("tiny_det")
    widget.predict_button.click()
    qtbot.waitUntil(lambda: "Predicted" in widget.status.text() or "failed" in widget.status.text(), timeout=LONG_MS)
    assert "stored in the PACS" in widget.status.text(), widget.status.text()
    shown = viewer.layers["PACS series"].data
    np.testing.assert_array_equal(shown, volume.array)
    mask = viewer.layers["mask"].data
    from napari_uqseg.client.remote import RemoteBackend

    backend = RemoteBackend(pacs_server.url, pacs_server.token)
    np.testing.assert_array_equal(mask, backend.predict(volume, "tiny_det").prediction.mask.array)  # the NIfTI path
    backend.close()
    assert len(np.unique(mask)) >= 2  # foreground found: the comparison above is not of two empty masks
    modalities = [s["00080060"]["Value"][0] for s in client.search_for_series(study)]
    assert sorted(modalities).count("SEG") == 1
