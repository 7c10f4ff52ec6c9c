#!/usr/bin/env python3
"""Render a small BOP dataset from the bundled meshes and read it back with BopDataset.

    python examples/render_and_load.py [--out data/example]

The same as `simdata render --meshes assets/ycb --out data/example --scenes 2 --views 2`,
from Python, followed by a DataLoader pass that prints what a training loop receives.
"""
import argparse
from pathlib import Path

from torch.utils.data import DataLoader

from simdata import BopDataset
from simdata.pipeline import RenderConfig, render_dataset
from simdata.sampling import SceneConfig

REPO = Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "data" / "example"), help="dataset folder")
    args = ap.parse_args()
    cfg = RenderConfig(meshes=str(REPO / "assets" / "ycb"), out=args.out, scenes=2, seed=0,
                       scene=SceneConfig(views=2, objects=(4, 6)))
    print(render_dataset(cfg).line())

    loader = DataLoader(BopDataset(args.out, min_visib_fract=0.1), batch_size=2,
                        collate_fn=BopDataset.collate)
    for batch in loader:
        print(f"rgb {tuple(batch['rgb'].shape)}  depth {tuple(batch['depth'].shape)} (m)  "
              f"objects per image {[len(ids) for ids in batch['obj_ids']]}  "
              f"first t (m) {batch['t'][0][0].tolist() if len(batch['t'][0]) else None}")


if __name__ == "__main__":
    main()
