import os

# Quieten TensorFlow's C++ start-up logging before any test imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from run_helpers import ChildJobs, KilledRuns, make_image_folder  # noqa: E402


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """The runner tests' default image folder (run_helpers.make_image_folder), made once."""
    return make_image_folder(tmp_path_factory.mktemp("tiny_images"))


@pytest.fixture(scope="session")
def child_jobs():
    """run_helpers.ChildJobs: jobs of child processes, each made once, two at a time."""
    return ChildJobs()


@pytest.fixture(scope="session")
def killed_runs(tiny_folder, tmp_path_factory):
    """The jobs of run_helpers.KILLS on `tiny_folder` (for `child_jobs`)."""
    return KilledRuns(tmp_path_factory.mktemp("killed"), tiny_folder)
