"""Fixtures shared by all test folders."""

import logging

import pytest
import torch

from slowmask.data.synthetic import write_demo_dataset


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory) -> str:
    """A demo dataset written once per session: moving shapes of 4 classes, 48 frames
    of 64 x 80 at 30 fps; train.csv (16 videos), val.csv and test.csv (4 each)."""
    out_dir = tmp_path_factory.mktemp("demo_data")
    write_demo_dataset(str(out_dir), videos_per_class=4)
    return str(out_dir)


@pytest.fixture(autouse=True)
def slowmask_logs_reach_caplog():
    """A run's set-up (setup_logging) stops slowmask's records at its own handlers;
    tests read them through pytest's caplog, which listens at the root logger."""
    logging.getLogger("slowmask").propagate = True
    yield
    # A tool's handlers hold the streams of the test that set them up (pytest's captures,
    # closed after it): a later test's records must not reach them.
    root = logging.getLogger("slowmask")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA device (run by tools/gpu_check.py; skipped without one)")


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` skip, saying why, where no CUDA device is at hand."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (marked gpu)")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)
