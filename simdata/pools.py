"""Process pools whose workers start in parallel, however large what they share, and quickly.

A pool worker gets its initializer's arguments through its start-up pipe, and the parent
writes them there before it starts the next worker. The pipe holds 64 KiB, so the parent waits
until each child has started Python, imported its modules and read everything: with the real
YCB meshes (49 MB pickled) that is about 2.6 s per worker, one after the other, so 16 workers
rendered their first scene after 42 s on a 16-core GPU machine
(benchmarks/results/render_throughput_gpu_nvidia_h100.json). :func:`worker_pool` pickles the
shared objects once into a temporary file instead; each worker reads it itself, all at once.
:func:`worker_executor` gives the same workers as a ``concurrent.futures`` executor, whose
results fail (BrokenProcessPool) rather than wait for ever when a worker dies.

Workers are forked from multiprocessing's fork server, a clean process that imported the
modules every worker needs (PRELOAD: about a second of each worker's start) once; started by
:func:`start_fork_server` while the caller loads its models, it has them ready when the pool
starts. It never creates a GL context or a pybullet client (neither survives a fork): workers
make their own. Each worker takes the caller's environment as it is when the pool starts (the
fork server's is the one it started with). Where the platform has no fork server, workers are
spawned.
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
def worker_pool(workers: int, initializer: Callable, shared: tuple, initargs: tuple = ()) -> Iterator:
    """A ``multiprocessing`` Pool of ``workers`` processes (forked from the fork server, see the
    module's docstring), each initialised by ``initializer(*shared, *initargs)``.
    ``shared`` (large: meshes, layouts) goes through one temporary pickle file that the
    workers read in parallel; ``initargs`` (small) through their start-up pipes as usual.
    Workers run OpenCV on one thread."""
    with _shared_file(shared) as path, \
            _context().Pool(workers, initializer=_start,
                            initargs=(path, initializer, initargs, dict(os.environ))) as pool:
        yield pool


@contextmanager
def worker_executor(workers: int, initializer: Callable, shared: tuple, initargs: tuple = (), *,
                    who: str, then: str) -> Iterator:
    """worker_pool's processes as a ``concurrent.futures`` executor. Where a worker dies
    (killed, out of memory) the block fails with one line, "``who`` died (killed, or out of
    memory?); ``then``" (a SimdataError), instead of waiting for ever as a multiprocessing
    Pool's results do. An error or interrupt in the block terminates the workers and cancels
    the queued tasks."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    with _shared_file(shared) as path:
        executor = ProcessPoolExecutor(workers, mp_context=_context(), initializer=_start,
                                       initargs=(path, initializer, initargs, dict(os.environ)))
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


# What every worker imports whatever its job: the fork server imports it once. Nothing that
# reads the environment when imported (PyOpenGL picks its platform then) or prints (pybullet's
# banner would follow a run's one-line error): workers import those themselves.
PRELOAD = ("numpy", "cv2", "trimesh", "simdata.pipeline", "simdata.crop_render",
           "simdata.grasping.labels")


def _context():
    """The multiprocessing context pools start their workers with: the fork server's, with
    PRELOAD imported in it, where the platform has one; else spawn's."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))  # not taken by a server already running
    return ctx


def start_fork_server() -> None:
    """Start the process that pool workers are forked from now (if not running), so that its
    imports overlap the caller's own work before the pool starts (loading the models); a pool
    started without this call starts it then."""
    if _context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def _start(path: str, initializer: Callable, initargs: tuple, env: dict) -> None:
    import signal

    import cv2

    # the environment of the pool's caller now, not the one the fork server started with
    # (SIMDATA_CACHE, PYOPENGL_PLATFORM, EGL_DEVICE_ID... may have been set since)
    os.environ.clear()
    os.environ.update(env)

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
