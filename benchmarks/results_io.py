"""Saving a benchmark's figures: one JSON per benchmark and device under benchmarks/results/."""
from __future__ import annotations

import json
import time
from pathlib import Path


def save_results(out: Path, results: dict, t_start: float | None = None) -> None:
    """Write ``results`` to ``out`` (a temporary name, then a rename, so a killed run never
    leaves half a file), with ``seconds`` since ``t_start`` (time.perf_counter()) if given."""
    if t_start is not None:
        results["seconds"] = round(time.perf_counter() - t_start, 1)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(out)
