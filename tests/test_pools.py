"""simdata.pools: spawned workers read what they share from one file, and get their small
arguments as usual."""
import os
import tempfile

import numpy as np

from simdata.pools import spawn_pool

_state: dict = {}


def _init(big, table, tag):
    _state.update(big=big, table=table, tag=tag)


def _look(i):
    import cv2

    return os.getpid(), float(_state["big"].sum()), _state["table"]["k"], _state["tag"], i, cv2.getNumThreads()


def test_spawned_workers_share_large_objects_through_a_file(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the shared pickle goes
    big = np.arange(2_000_000, dtype=np.float64)  # 16 MB: far beyond a pipe's buffer
    with spawn_pool(2, _init, (big, {"k": 3}), ("x",)) as pool:
        out = pool.map(_look, range(8), chunksize=1)
        assert len(list(tmp_path.iterdir())) == 1  # the pool's temporary folder, while it runs
    assert [r[4] for r in out] == list(range(8))
    assert {r[1:4] for r in out} == {(float(big.sum()), 3, "x")}
    assert {r[5] for r in out} == {1}  # OpenCV on one thread in each of several workers
    assert os.getpid() not in {r[0] for r in out}
    assert list(tmp_path.iterdir()) == []  # removed with the pool
