"""ogbn-products: GraphSAGE with neighbour sampling through the gnnsys loader.

OGB's example setting: 3 layers, fanouts [15, 10, 5], batch 1024, hidden 256, lr 0.003,
20 epochs; published 78.70 ± 0.36. Without ``--root`` it runs on ``synthetic:products``
(or ``--standin mini`` for a quick look) and says so; a folder under ``--root`` without
products' sizes is reported as not comparable.

    python benchmarks/ogb/ogbn_products.py --root ~/data/ogb --runs 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import check_sizes, report, standin_note  # noqa: E402

PUBLISHED = "78.70 ± 0.36"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--root", default=None, help="folder holding ogbn_products (no download)")
    p.add_argument("--standin", default="products", choices=("products", "mini", "tiny"))
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--fanout", default="15,10,5")
    p.add_argument("--device", default="cpu")
    p.add_argument("--features", default="host")
    p.add_argument("--out", default="runs/ogbn_products")
    a = p.parse_args(argv)
    run("ogbn-products", PUBLISHED, a)


def run(name: str, published: str, a: argparse.Namespace) -> None:
    from gnnsys import datasets
    from gnnsys.cli import build_parser, validate_train_args
    from gnnsys.trainer import train

    dataset = name if a.root else f"synthetic:{a.standin}"
    ds, mismatches = None, []
    if a.root:  # loaded once, checked against the real sizes, shared by the runs
        ds = datasets.ogb(name, a.root)
        mismatches = check_sizes(name, ds)
    else:
        standin_note(name, dataset)
    tests = []
    for run_i in range(a.runs):
        argv = [
            "train",
            "--dataset",
            dataset,
            "--model",
            "sage",
            "--hidden",
            "256",
            "--fanout",
            a.fanout,
            "--batch-size",
            "1024",
            "--lr",
            "0.003",
            "--epochs",
            str(a.epochs),
            "--eval-every",
            str(a.epochs),
            "--seed",
            str(run_i),
            "--device",
            a.device,
            "--features",
            a.features,
            "--out",
            f"{a.out}/run{run_i}",
            "--checkpoint-every",
            "0",
        ]
        if a.root:
            argv += ["--root", a.root]
        parser = build_parser()
        args = parser.parse_args(argv)
        validate_train_args(args, parser)
        rows = train(args, dataset=ds)
        tests.append(rows[-1]["test_acc"])
    report(
        name,
        "GraphSAGE [" + a.fanout + "]",
        published,
        tests,
        standin=not a.root,
        mismatches=mismatches,
        epochs=a.epochs,
    )


if __name__ == "__main__":
    main()
