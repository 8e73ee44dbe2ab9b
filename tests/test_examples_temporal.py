"""examples/temporal_link_prediction.py: no batch sees the future, and the run reports an MRR."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from gnnsys.datasets import synthetic

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "temporal_link_prediction.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("temporal_link_prediction", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def home(monkeypatch, tmp_path):
    monkeypatch.setenv("GNNSYS_HOME", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("split, negatives", [("train", 1), ("val", 20)])
def test_every_sampled_edge_is_older_than_its_seed(example, home, split, negatives):
    ds = synthetic("tiny-stream")
    _, label_time = ds.split(split)
    batches = list(example.iter_batches("tiny-stream", split, batch_size=32,
                                        num_negatives=negatives, max_batches=2))  # fmt: skip
    assert len(batches) == 2
    for b in batches:
        when = label_time[b.input_id]  # the interaction times of the batch's positives
        assert torch.equal(b.seed_time, when - 1)
        owner = b.batch[b.edge_index[1]]  # the positive each sampled edge's tree belongs to
        assert b.e_id.numel() > 0
        assert torch.equal(b.time, ds.edge_time[b.e_id])  # the edges' real times
        assert bool((b.time <= b.seed_time[owner]).all())
        assert bool((b.time < when[owner]).all())  # strictly older than the predicted edge
        negs = b.n_id[b.dst_neg_index]
        assert negs.shape == (32, negatives) if negatives > 1 else negs.shape == (32,)
        assert bool((negs >= ds.num_users).all())  # negatives are items


def test_main_reports_mrr(example, home, capsys):
    argv = ["--dataset", "tiny-stream", "--max-batches", "2", "--batch-size", "32",
            "--eval-edges", "64", "--eval-batch-size", "32", "--num-negatives", "20",
            "--seed", "1"]  # fmt: skip
    result = example.main(argv)
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line == result
    assert result["train_batches"] == 2
    for split in ("val_mrr", "test_mrr"):
        assert 0.0 < result[split] <= 1.0
    with pytest.raises(SystemExit):
        example.main(["--dataset", "tiny-stream", "--epochs", "0"])
