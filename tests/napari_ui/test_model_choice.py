"""The Predict box's choices without Qt: methods serving-first, versions newest-first, a method's cost."""

from napari_uqseg.core.records import MethodInfo, ModelSummary, ModelVersion
from napari_uqseg.napari_ui.model_choice import method_cost, methods_of, version_items

MODEL = ModelSummary(
    "hippo",
    "v3",
    (
        ModelVersion("v1", "mc_dropout", ""),
        ModelVersion("v2", "deterministic", ""),
        ModelVersion("v3", "mc_dropout", "", parent="v1"),
    ),
)


def test_the_serving_method_comes_first():
    assert methods_of(MODEL) == ["mc_dropout", "deterministic"]
    assert methods_of(ModelSummary("m", "v1", (ModelVersion("v1", "deterministic", ""),))) == ["deterministic"]


def test_versions_newest_first_and_the_serving_one_says_so():
    assert version_items(MODEL, "mc_dropout") == [("v3 (serving)", "v3"), ("v1", "v1")]
    assert version_items(MODEL, "deterministic") == [("v2", "v2")]
    assert version_items(MODEL, "ensemble") == []


def test_method_cost_line():
    assert method_cost(None, "swag") == "swag: cost unknown"
    info = MethodInfo("mc_dropout", "dropout at test time", 8.0, ("entropy",))
    line = method_cost(info, "mc_dropout")
    assert line.startswith("8 forward passes per prediction; maps: ") and line.count(",") == 0  # one map
    single = method_cost(MethodInfo("deterministic", "one pass", 1.0, ("entropy", "max_prob")), "deterministic")
    assert single.startswith("1 forward pass per prediction; maps: ") and single.count(",") == 1


def test_a_version_left_uncalibrated_by_its_fine_tune_says_so():
    from napari_uqseg.core.recalibration import recalibration_note

    few = {"uq_calibration": recalibration_note(["c1"], ["v1"], ["none"])}
    enough = {"uq_calibration": recalibration_note(["c1"], [f"v{i}" for i in range(9)], ["none"])}
    model = ModelSummary(
        "hippo",
        "v1",
        (
            ModelVersion("v1", "mc_dropout", ""),
            ModelVersion("v2", "mc_dropout", "", "v1", few),
            ModelVersion("v3", "mc_dropout", "", "v1", enough),
        ),
    )
    assert version_items(model, "mc_dropout") == [("v3", "v3"), ("v2 (not calibrated)", "v2"), ("v1 (serving)", "v1")]
