"""Test configuration: Triton runs interpreted on CPU, GPU-only tests skip without CUDA."""

import os

import pytest
import torch

# Triton decides between compiling and interpreting when a kernel is decorated, so this must be
# set before any gnnsys module that defines kernels is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def device() -> torch.device:
    """The device Triton kernels run on: CUDA when present, else CPU under TRITON_INTERPRET=1."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
