"""gnnsys._lazy: the packages' names load on first use, show in dir(), and unknown names
raise AttributeError naming the package."""

import importlib

import pytest

from gnnsys._lazy import lazy_names

PACKAGES = ["gnnsys", "gnnsys.loaders", "gnnsys.distributed", "gnnsys.pipeline_parallel",
            "gnnsys.ops"]  # fmt: skip


@pytest.mark.parametrize("name", PACKAGES)
def test_dir_lists_every_public_name_before_it_loads(name):
    pkg = importlib.import_module(name)
    assert set(pkg.__all__) <= set(dir(pkg))
    with pytest.raises(AttributeError, match=f"module '{name}' has no attribute 'nope'"):
        pkg.nope  # noqa: B018


def test_names_resolve_to_attributes_or_submodules_and_are_cached():
    ns = {}
    getattr_, dir_ = lazy_names("gnnsys", {"ops": "gnnsys.ops", "Graph": "gnnsys.graph"}, ns)
    ops = getattr_("ops")
    assert ops is importlib.import_module("gnnsys.ops")  # the submodule itself
    assert getattr_("Graph") is importlib.import_module("gnnsys.graph").Graph
    assert set(ns) == {"ops", "Graph"} and dir_() == ["Graph", "ops"]


def test_ops_names_resolve():
    import gnnsys.ops

    assert gnnsys.ops.spmm is importlib.import_module("gnnsys.ops.sparse").spmm
