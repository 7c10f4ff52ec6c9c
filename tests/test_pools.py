"""simdata.pools: workers read what they share from one file, get their small arguments as
usual, and the caller's environment and imports as they are when the pool starts."""
import os
import tempfile

import numpy as np

from simdata.pools import PRELOAD, worker_executor, worker_pool, start_fork_server

_state: dict = {}


def _init(big, table, tag):
    _state.update(big=big, table=table, tag=tag)


def _look(i):
    import cv2

    return os.getpid(), float(_state["big"].sum()), _state["table"]["k"], _state["tag"], i, cv2.getNumThreads()


def test_pool_workers_share_large_objects_through_a_file(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the shared pickle goes
    big = np.arange(2_000_000, dtype=np.float64)  # 16 MB: far beyond a pipe's buffer
    with worker_pool(2, _init, (big, {"k": 3}), ("x",)) as pool:
        out = pool.map(_look, range(8), chunksize=1)
        ours = lambda: [p for p in tmp_path.iterdir() if p.name.startswith("simdata_pool_")]  # noqa: E731
        assert len(ours()) == 1  # the pool's temporary folder, while it runs
    assert [r[4] for r in out] == list(range(8))
    assert {r[1:4] for r in out} == {(float(big.sum()), 3, "x")}
    assert {r[5] for r in out} == {1}  # OpenCV on one thread in each of several workers
    assert os.getpid() not in {r[0] for r in out}
    assert ours() == []  # removed with the pool


def _env_and_modules(name):
    import sys

    return os.environ.get(name), os.getppid(), sorted(m for m in PRELOAD if m in sys.modules), \
        "OpenGL" in sys.modules


def test_workers_are_forked_with_the_imports_and_take_the_callers_environment_now(monkeypatch):
    """Workers come from a fork server that imported PRELOAD (and not OpenGL, which reads
    $PYOPENGL_PLATFORM when imported); a variable set after that server started still reaches
    them, and one removed since is gone."""
    monkeypatch.setenv("SIMDATA_POOL_GONE", "1")
    start_fork_server()  # with SIMDATA_POOL_GONE in its environment (or started earlier)
    monkeypatch.setenv("SIMDATA_POOL_TEST", "set after the server started")
    monkeypatch.delenv("SIMDATA_POOL_GONE")
    with worker_executor(2, _init, (np.zeros(1), {}), ("x",), who="a test worker", then="") as pool:
        seen = list(pool.map(_env_and_modules, ["SIMDATA_POOL_TEST"] * 2))
        gone = pool.submit(_env_and_modules, "SIMDATA_POOL_GONE").result()[0]
    assert {r[0] for r in seen} == {"set after the server started"} and gone is None
    assert all(r[1] != os.getpid() for r in seen)  # forked from the server, not from this process
    assert all(r[2] == sorted(PRELOAD) and not r[3] for r in seen)
