import pytest
import torch


def pytest_collection_modifyitems(config, items):
    # CUDA tests are marked `cuda` and skipped, with a reason, when no device is present.
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="torch.cuda.is_available() is False")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_procedural(tmp_path_factory):
    """A procedural dataset of one training and one test shape per category (32 x 32,
    one view each), written once for the whole session."""
    from svrecon.data import generate_procedural_dataset

    root = tmp_path_factory.mktemp("procedural")
    generate_procedural_dataset(
        root, {"train": 1, "test": 1}, {"train": 1, "test": 1}, image_size=32, progress=False
    )
    return root
