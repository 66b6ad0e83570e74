"""Region-of-interest transfer against a real ``uqseg serve`` on a loopback port: crops equal the whole outputs
inside the box, the background value outside, the reported loss is the true one, and fewer bytes travel."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from napari_uqseg.client.errors import BadRequest
from napari_uqseg.client.output_download import ROI_MARGIN, region_of_interest
from napari_uqseg.client.remote import RemoteBackend
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_io import float_map_from_bytes
from napari_uqseg.core.output_box import box_slices, crop_affine, fill_value, foreground_box, parse_box
from napari_uqseg.core.sample_data import synthetic_case

BOX = "4:14,6:18,8:20"


@pytest.fixture(scope="module")
def whole(uqseg_server):
    """An MC-Dropout prediction (four maps) downloaded whole, and the bytes that took."""
    image, _ = synthetic_case((24, 24, 24), seed=71)
    with RemoteBackend(uqseg_server.url, uqseg_server.token) as backend:
        result = backend.predict(image, "tiny_mcd")
        before = backend.bytes_received
        again = backend.fetch_prediction(result.id)
        return result, again, backend.bytes_received - before


def _outputs(prediction):
    """name -> array, probabilities channels last as on the wire."""
    return {
        "mask": prediction.mask.array,
        "probabilities": np.moveaxis(prediction.probabilities.array, 0, -1),
        **{name: volume.array for name, volume in prediction.maps.items()},
    }


def test_box_outputs_equal_the_whole_ones_inside_and_the_background_outside(uqseg_server, whole):
    result, again, whole_bytes = whole
    box = parse_box(BOX, (24, 24, 24))
    inside = np.zeros((24, 24, 24), bool)
    inside[box_slices(box)] = True
    with RemoteBackend(uqseg_server.url, uqseg_server.token) as backend:
        roi = backend.fetch_prediction(result.id, box=BOX)
        roi_bytes = backend.bytes_received
    full, cropped = _outputs(again.prediction), _outputs(roi.prediction)
    assert set(cropped) == set(full) and len(full) == 6  # mask, probabilities and MC-Dropout's four maps
    for name, array in full.items():
        pasted = cropped[name]
        assert pasted.shape == array.shape, name
        np.testing.assert_array_equal(pasted[inside], array[inside], err_msg=name)
        fill = fill_value(name, array.shape[-1] if array.ndim == 4 else 1)
        np.testing.assert_array_equal(pasted[~inside], np.broadcast_to(fill, pasted[~inside].shape), err_msg=name)
        lost = float(np.max(np.abs(array[~inside] - fill)))
        assert roi.prediction.info["roi"]["outside_error"][name] == pytest.approx(lost, abs=1e-6), name
    np.testing.assert_allclose(roi.prediction.mask.affine, result.prediction.mask.affine)
    assert roi.prediction.info["roi"]["box"] == [list(b) for b in box]
    assert 0 < roi_bytes < whole_bytes  # a box of 28 % of the voxels: fewer bytes received
    for name, array in full.items():  # the whole download equals the prediction's own
        np.testing.assert_array_equal(array, _outputs(result.prediction)[name], err_msg=name)


def test_a_cropped_output_file_lies_where_it_belongs(uqseg_server, whole):
    result = whole[0]
    with RemoteBackend(uqseg_server.url, uqseg_server.token) as backend:
        data = backend.output(result.id, "entropy", box=BOX)
        full = float_map_from_bytes(backend.output(result.id, "entropy"))
        answer = requests.get(
            f"{uqseg_server.url}/v1/predictions/{result.id}/outputs/entropy",
            params={"box": BOX},
            headers={"Authorization": f"Bearer {uqseg_server.token}"},
            timeout=60,
        )
    crop = float_map_from_bytes(data)
    box = parse_box(BOX, full.shape)
    np.testing.assert_array_equal(crop.array, full.array[box_slices(box)])
    np.testing.assert_allclose(crop.affine, crop_affine(full.affine, box))
    assert answer.headers["X-UQSeg-Box"] == BOX and answer.headers["X-UQSeg-Shape"] == "24,24,24"


@pytest.mark.parametrize("box", ["0:30,0:5,0:5", "3:3,0:5,0:5", "0:5,0:5", "../x"])
def test_a_bad_box_is_refused_naming_it(uqseg_server, whole, box):
    with RemoteBackend(uqseg_server.url, uqseg_server.token) as backend:
        with pytest.raises(BadRequest, match="box"):
            backend.output(whole[0].id, "mask", box=box)
        with pytest.raises(InputError, match="box"):
            backend.fetch_prediction(whole[0].id, box=box)


def test_the_summary_reports_the_foreground_box(uqseg_server, whole):
    result = whole[0]
    summary = requests.get(
        f"{uqseg_server.url}/v1/predictions/{result.id}",
        headers={"Authorization": f"Bearer {uqseg_server.token}"},
        timeout=60,
    ).json()
    expected = foreground_box(result.prediction.mask.array)
    assert summary["foreground_box"] == ([list(b) for b in expected] if expected else None)


def test_region_of_interest_is_foreground_and_review_boxes_grown_by_the_margin():
    summary = {
        "shape": [64, 64, 64],
        "foreground_box": [[20, 30], [22, 28], [30, 40]],
        "review": {"regions": [{"bbox": [[18, 25], [40, 44], [31, 33]]}]},
    }
    assert region_of_interest(summary, 4) == ((14, 34), (18, 48), (26, 44))
    assert region_of_interest(summary, None) is None  # whole outputs asked
    assert region_of_interest(summary, 40) is None  # covers the image: fetch whole outputs
    assert region_of_interest({k: v for k, v in summary.items() if k != "foreground_box"}, 4) is None  # old server
    empty = {**summary, "foreground_box": None, "review": {"regions": []}}
    assert region_of_interest(empty, ROI_MARGIN) is None  # nothing to look at: the whole image
    only_review = {**summary, "foreground_box": None}
    assert region_of_interest(only_review, 0) == ((18, 25), (40, 44), (31, 33))


def test_predict_with_a_margin_fetches_whole_outputs_when_the_region_covers_the_image(uqseg_server):
    """The tiny model's noisy mask spans the image: the region of interest is the image, fetched whole."""
    image, _ = synthetic_case((24, 24, 24), seed=71)
    with RemoteBackend(uqseg_server.url, uqseg_server.token, roi_margin=ROI_MARGIN) as backend:
        margin = backend.predict(image, "tiny_det")
    with RemoteBackend(uqseg_server.url, uqseg_server.token) as backend:
        plain = backend.predict(image, "tiny_det")
    assert "roi" not in margin.prediction.info
    for name, array in _outputs(plain.prediction).items():
        np.testing.assert_array_equal(_outputs(margin.prediction)[name], array, err_msg=name)
