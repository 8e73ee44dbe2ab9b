"""ogbn-papers100M: GraphSAGE with neighbour sampling, features kept in host memory.

Setting: 3 layers, fanouts [15, 10, 5] (or [10, 10, 10]), batch 1024, hidden 256; published
results for sampled GraphSAGE are about 61.8-64.6 depending on the setting. Without ``--root``
it runs on ``synthetic:products`` (or ``--standin mini``) and says so. With a GPU, pass
``--device cuda --features unified`` to keep the 111M x 128 feature table in host memory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ogbn_products import run  # noqa: E402

PUBLISHED = "61.8-64.6 (sampled GraphSAGE, various settings)"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--root", default=None, help="folder holding ogbn_papers100M (no download)")
    p.add_argument("--standin", default="products", choices=("products", "mini", "tiny"))
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--fanout", default="15,10,5", choices=("15,10,5", "10,10,10"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--features", default="host")
    p.add_argument("--out", default="runs/ogbn_papers100m")
    run("ogbn-papers100M", PUBLISHED, p.parse_args(argv))


if __name__ == "__main__":
    main()
