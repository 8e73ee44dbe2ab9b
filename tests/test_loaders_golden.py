"""The sampler redesign changes no homogeneous result: every configuration of
``golden_batches.py`` gives the digests the pre-typed-core sampler gave (commit 920f7bc)."""

import json
from pathlib import Path

import pytest
from golden_batches import digests

GOLDEN = json.loads((Path(__file__).parent / "data" / "golden_batches.json").read_text())


@pytest.fixture(scope="module")
def current():
    return digests()


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_batches_bitwise_unchanged(current, name):
    assert current[name] == GOLDEN[name]


def test_no_configuration_lost(current):
    assert sorted(current) == sorted(GOLDEN)
