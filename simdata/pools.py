"""Process pools whose workers start in parallel, however large what they share.

A spawned worker gets its initializer's arguments through its start-up pipe, and the parent
writes them there before it starts the next worker. The pipe holds 64 KiB, so the parent waits
until each child has started Python, imported its modules and read everything: with the real
YCB meshes (49 MB pickled) that is about 2.6 s per worker, one after the other, so 16 workers
rendered their first scene after 42 s on a 16-core GPU machine
(benchmarks/results/render_throughput_gpu_nvidia_h100.json). :func:`spawn_pool` pickles the
shared objects once into a temporary file instead; each worker reads it itself, all at once.
:func:`spawn_executor` gives the same workers as a ``concurrent.futures`` executor, whose
results fail (BrokenProcessPool) rather than wait for ever when a worker dies.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import SimdataError
from .fileio import disk_error


@contextmanager
def _shared_file(shared: tuple) -> Iterator[str]:
    """Path of a temporary pickle of ``shared``, removed on exit."""
    with tempfile.TemporaryDirectory(prefix="simdata_pool_") as tmp:
        path = Path(tmp) / "shared.pickle"
        try:
            with open(path, "wb") as f:
                pickle.dump(shared, f, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError as e:
            raise disk_error(path, e) from None
        yield str(path)


@contextmanager
def spawn_pool(workers: int, initializer: Callable, shared: tuple, initargs: tuple = ()) -> Iterator:
    """A ``multiprocessing`` Pool of ``workers`` spawned processes (GL contexts and pybullet
    clients do not survive fork), each initialised by ``initializer(*shared, *initargs)``.
    ``shared`` (large: meshes, layouts) goes through one temporary pickle file that the
    workers read in parallel; ``initargs`` (small) through their start-up pipes as usual.
    Workers run OpenCV on one thread."""
    with _shared_file(shared) as path, \
            mp.get_context("spawn").Pool(workers, initializer=_start,
                                         initargs=(path, initializer, initargs)) as pool:
        yield pool


@contextmanager
def spawn_executor(workers: int, initializer: Callable, shared: tuple, initargs: tuple = (), *,
                   who: str, then: str) -> Iterator:
    """spawn_pool's processes as a ``concurrent.futures`` executor. Where a worker dies
    (killed, out of memory) the block fails with one line, "``who`` died (killed, or out of
    memory?); ``then``" (a SimdataError), instead of waiting for ever as a multiprocessing
    Pool's results do. An error or interrupt in the block terminates the workers and cancels
    the queued tasks."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    with _shared_file(shared) as path:
        executor = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                       initializer=_start, initargs=(path, initializer, initargs))
        try:
            yield executor
        except BaseException as e:
            # a failed or interrupted run stops its workers now, not after their current task
            # (the executor has no public way to; what they leave half-done is in temp names)
            for process in list(getattr(executor, "_processes", {}).values()):
                process.terminate()
            executor.shutdown(wait=True, cancel_futures=True)
            if isinstance(e, BrokenProcessPool):
                raise SimdataError(f"{who} died (killed, or out of memory?); {then}") from None
            raise
        executor.shutdown(wait=True)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _start(path: str, initializer: Callable, initargs: tuple) -> None:
    import signal

    import cv2

    # Ctrl-C reaches the whole process group: the parent stops the run and its workers; a
    # worker that took it itself would only print a traceback of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    # each worker is one of several processes sharing the cores: OpenCV's own thread pool (one
    # thread per core in every worker) only oversubscribes them. On a 16-core H100 machine, in
    # two alternated rounds of render_throughput.py with 8 and 16 workers, all four runs with
    # OPENCV_FOR_THREADS_NUM=1 (and OMP_NUM_THREADS=1) were faster than the four without: +18 %
    # and +10 % images/s on average. Results do not depend on the thread count.
    cv2.setNumThreads(1)
    with open(path, "rb") as f:
        shared = pickle.load(f)
    initializer(*shared, *initargs)
