"""The client's public API is exactly its ``__all__`` (what napari and Slicer use), as httpx checks its own."""

import napari_uqseg.client as client

PUBLIC = {
    # backends
    "Backend",
    "PredictionResult",
    "RemoteBackend",
    "LocalBackend",
    "default_local_dir",
    # errors (the tree is drawn in client/errors.py)
    "BackendError",
    "ConnectionFailed",
    "BackendTimeout",
    "AuthError",
    "BadRequest",
    "NotFoundError",
    "TooLarge",
    "ServerError",
    "ProtocolMismatch",
    "describe_error",
    # waiting for jobs
    "JobWatch",
    # first model: starter, import, train
    "TRAIN_METHODS",
    "model_name_from",
    "start_training",
    "training_outcome",
    "use_starter",
    # triage worklists
    "WorklistSource",
    "LocalWorklist",
    "RemoteWorklist",
}


def test_all_lists_exactly_the_public_members():
    assert set(client.__all__) == PUBLIC
    assert len(client.__all__) == len(PUBLIC)  # no name twice


def test_every_exported_member_exists_and_comes_from_the_client():
    for name in client.__all__:
        member = getattr(client, name)
        module = getattr(member, "__module__", None)
        if module is not None:  # constants have no module
            assert module.startswith("napari_uqseg.client."), (name, module)


def test_no_other_public_names():
    public = {name for name in vars(client) if not name.startswith("_")}
    submodules = {name for name in public if type(getattr(client, name)).__name__ == "module"}
    assert public - submodules == PUBLIC
