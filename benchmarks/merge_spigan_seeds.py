#!/usr/bin/env python3
"""Merge the per-process JSONs of benchmarks/gpu_spigan_seeds.sh (adapt_spigan.py runs, one
training seed each) into one result: per test set and row, each seed's object IoU, mIoU,
steps/s and peak memory; SPIGAN's negative transfer against the source-only net of the same
source and the same seed (the share of test images whose IoU falls); and over the seeds the
mean object IoU of each row, SPIGAN's mean gain over its source-only net, and the negative
transfer of the seed means (each image's IoU averaged over the seeds, then compared). A SPIGAN
row started from the source-only net (init=true) is also compared, the same way, with that net
trained as many more steps without adaptation ("vs_continued").

    python benchmarks/merge_spigan_seeds.py RUN.json [RUN.json ...] --out MERGED.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]
from adapt.evaluate import negative_transfer  # noqa: E402
from results_io import save_results  # noqa: E402 (benchmarks/, the script's folder)


def _compare(seeds: dict, label: str, base_label: str, key: str = "negative_transfer_vs_same_seed") -> dict:
    """Row ``label`` against row ``base_label`` of the same seed: gains, negative transfer per
    seed (also stored in each seed's entry under ``key``) and of the seed means; {} if no seed
    has both rows."""
    gains, nts, pairs = [], [], []
    for rows in seeds.values():
        if label in rows and base_label in rows:
            a, b = rows[label], rows[base_label]
            a[key] = negative_transfer(a["per_image_iou"], b["per_image_iou"])
            gains.append(a["object_iou"] - b["object_iou"])
            nts.append(a[key])
            pairs.append((a["per_image_iou"], b["per_image_iou"]))
    if not gains:
        return {}
    # each image's IoU averaged over the seeds first: what is left is the method's effect on
    # that image, not one training run's luck
    mean_a = [statistics.fmean(x) for x in zip(*(p[0] for p in pairs))]
    mean_b = [statistics.fmean(x) for x in zip(*(p[1] for p in pairs))]
    return dict(baseline=base_label, gain_mean=round(statistics.fmean(gains), 4),
                gains=[round(g, 4) for g in gains], negative_transfer=nts,
                negative_transfer_mean=round(statistics.fmean(nts), 4),
                negative_transfer_of_seed_means=negative_transfer(mean_a, mean_b),
                met=bool(statistics.fmean(gains) >= 0.05 and statistics.fmean(nts) <= 0.2))


def merge(runs: list[dict]) -> dict:
    """``runs``: adapt_spigan.py results, each with config.seed. Returns
    {test: {"seeds": {seed: {row: entry}}, "summary": {...}}}."""
    tests: dict = {}
    for r in runs:
        seed = r["config"]["seed"]
        for test, rows in r.get("rows", {}).items():
            for label, entry in rows.items():
                tests.setdefault(test, {}).setdefault(seed, {})[label] = {
                    k: entry[k] for k in ("object_iou", "miou", "steps", "early_stop", "steps_per_s",
                                          "peak_memory_mb", "init_task",
                                          "negative_transfer_vs_continued", "per_image_iou")
                    if k in entry}
    out = {}
    for test, seeds in sorted(tests.items()):
        labels = sorted({label for rows in seeds.values() for label in rows})
        summary = {"seeds": sorted(seeds)}
        for label in labels:
            vals = [rows[label]["object_iou"] for rows in seeds.values() if label in rows]
            summary[label] = {"object_iou_mean": round(statistics.fmean(vals), 4),
                              "object_iou_min": min(vals), "object_iou_max": max(vals), "runs": len(vals)}
        for label in labels:
            if "clean source" not in label and "DR source" not in label:
                continue
            base_label = "source-only (clean)" if "clean source" in label else "source-only (DR)"
            summary[label].update(_compare(seeds, label, base_label))
            # a row that started from the source-only net (init=true) is also set beside the same
            # net trained as many more steps without adaptation: the gain that is the method's
            cont = _compare(seeds, label, base_label + ", continued", key="negative_transfer_vs_continued")
            if cont:
                summary[label]["vs_continued"] = cont
        out[test] = {"summary": summary, "seeds": {str(s): rows for s, rows in sorted(seeds.items())}}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="adapt_spigan.py result JSONs (one seed each)")
    ap.add_argument("--out", required=True, help="merged JSON")
    ap.add_argument("--how", default="benchmarks/gpu_spigan_seeds.sh: one adapt_spigan.py process "
                    "per SPIGAN seed and two for the source-only rows, at once on the one GPU; "
                    "merged by benchmarks/merge_spigan_seeds.py",
                    help="how the runs were made, recorded in the JSON [gpu_spigan_seeds.sh's way]")
    args = ap.parse_args()
    runs = []
    for p in args.runs:
        try:
            runs.append(json.loads(Path(p).read_text()))
        except (OSError, ValueError) as e:
            print(f"skipped {p}: {e}", file=sys.stderr)
    if not runs:
        raise SystemExit("no readable run JSON")
    first = runs[0]
    results = {"benchmark": "adapt_spigan_seeds", "date": first["date"], "device": first["device"],
               "vgg_weights": first["vgg_weights"], "labels": first["labels"],
               "config": {**{k: v for k, v in first["config"].items() if k not in ("seed", "rows", "tests")},
                          "variants": {k: v for r in runs for k, v in r["config"].get("variants", {}).items()}},
               "how": args.how,
               "partial_runs": [p for p, r in zip(args.runs, runs) if r.get("partial")],
               "tests": merge(runs)}
    results["seconds_per_process"] = {p: r.get("seconds") for p, r in zip(args.runs, runs)}
    save_results(args.out, results)
    for test, t in results["tests"].items():
        for label, s in t["summary"].items():
            if label == "seeds":
                continue
            extra = (f", gain {s['gain_mean']:+.3f} {s['gains']}, negative transfer {s['negative_transfer']}"
                     f" (of the seed means {s['negative_transfer_of_seed_means']})"
                     if "gain_mean" in s else "")
            print(f"{test:<22} {label:<28} object IoU {s['object_iou_mean']:.3f} "
                  f"({s['object_iou_min']:.3f}-{s['object_iou_max']:.3f}, {s['runs']} runs){extra}")
            if "vs_continued" in s:
                c = s["vs_continued"]
                print(f"{'':<22} {'  against ' + c['baseline']:<28} gain {c['gain_mean']:+.3f} {c['gains']}, "
                      f"negative transfer {c['negative_transfer']} (of the seed means "
                      f"{c['negative_transfer_of_seed_means']})")


if __name__ == "__main__":
    main()
