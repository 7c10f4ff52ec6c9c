"""Scenes as Ray tasks (`simdata render --ray`): the same scene function that local worker
processes run, scheduled by Ray over every node of a cluster.

Each task renders one scene and writes it itself, atomically, into ``--out``, exactly as a
local worker does; so the output is byte-identical to a local run with the same seed, and a
rerun resumes. ``--out`` must therefore be on storage that every node mounts under the same
path (the task checks and says so). The driver only submits tasks and collects their
counts; Ray retries a task whose node died, and an error inside a task ends the run with the
scene's index (scenes already finished are kept).
"""
from __future__ import annotations

import logging
import socket
from typing import Callable, Iterator

from .errors import SimdataError

log = logging.getLogger(__name__)

# Environment of the driver that tasks get too (a remote node does not inherit it).
RAY_ENV_VARS = ("PYOPENGL_PLATFORM", "EGL_DEVICE_ID", "SIMDATA_CACHE")
# Tasks in flight at once: enough to keep a large (or autoscaling) cluster busy, few enough
# that waiting on them stays cheap for a dataset of 100k scenes.
MAX_IN_FLIGHT = 1024


def import_ray():
    """The ray module, or a SimdataError saying which extra installs it."""
    try:
        import ray
    except ImportError:
        raise SimdataError("--ray needs Ray; install it with pip install 'simdata-adapt[cluster]' "
                           "(or pip install 'ray>=2.9') on the driver and every node") from None
    return ray


def check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Fail fast on a cluster address nothing answers at: ray.init waits for minutes there."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise SimdataError(f"--ray {address}: write auto, or the head node's HOST:PORT "
                           f"(e.g. 10.0.0.5:6379, or ray://HOST:10001 for Ray Client)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise SimdataError(f"--ray {address}: nothing answers at {host}:{port} "
                           f"({e.strerror or e}); start the head there with `ray start --head`, "
                           f"or use --ray auto") from None


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


class RayScenes:
    """Connect to Ray on ``__enter__``, run tasks with :meth:`map`, cancel what is left and
    disconnect on ``__exit__``.

    ``address``: "auto" joins the cluster of $RAY_ADDRESS or the one `ray start` runs on this
    machine, else starts a local Ray with every CPU; otherwise a cluster address (host:6379 of
    the head node, or ray://host:10001 for Ray Client). A Ray that this process has already
    initialised is used as it is and left running. ``env_vars`` are set in every task.
    """

    def __init__(self, address: str, env_vars: dict[str, str] | None = None):
        self.address, self.env_vars = address, dict(env_vars or {})
        self.ray = None
        self.started = False
        self.pending: dict = {}

    def __enter__(self) -> "RayScenes":
        ray = self.ray = import_ray()
        if not ray.is_initialized():
            if self.address != "auto":
                check_reachable(self.address)
            try:
                ray.init(address=None if self.address == "auto" else self.address,
                         logging_level=logging.WARNING)
            except Exception as e:  # ConnectionError, ValueError, RuntimeError, ... by version
                raise SimdataError(
                    f"--ray {self.address}: cannot reach Ray ({_one_line(e)}); start a cluster "
                    f"with `ray start --head` and pass the head's address (host:6379), or use "
                    f"--ray auto") from None
            self.started = True
        log.info("Ray: %s CPUs on %d nodes", ray.cluster_resources().get("CPU", 0),
                 len([n for n in ray.nodes() if n.get("Alive")]))
        return self

    def cpus(self) -> int:
        return int(self.ray.cluster_resources().get("CPU", 0))

    def map(self, fn: Callable[..., dict], shared: tuple, items: list[int]) -> Iterator[dict]:
        """Yield ``fn(*shared, item)`` for every item as its task finishes (in any order).

        ``fn`` must be importable by name on the nodes (a module-level function of simdata);
        ``shared`` is put into Ray's object store once. A task that raises ends the run with a
        one-line SimdataError naming its item (the scene index).
        """
        ray = self.ray
        options = {"max_retries": 3}  # retried only when a node or worker dies, not on errors
        if self.env_vars:
            options["runtime_env"] = {"env_vars": self.env_vars}
        task = ray.remote(fn).options(**options)
        refs = [ray.put(value) for value in shared]
        todo = list(items)
        todo.reverse()  # pop() from the end submits in scene order
        while todo or self.pending:
            while todo and len(self.pending) < MAX_IN_FLIGHT:
                item = todo.pop()
                self.pending[task.remote(*refs, item)] = item
            [done], _ = ray.wait(list(self.pending), num_returns=1)
            item = self.pending.pop(done)
            try:
                result = ray.get(done)
            except ray.exceptions.RayError as e:
                cause = getattr(e, "cause", None) or e
                log.debug("scene %d failed in Ray", item, exc_info=e)
                raise SimdataError(f"scene {item} failed in a Ray task: {_one_line(cause)}; "
                                   f"finished scenes are kept, rerun to resume") from None
            yield result

    def __exit__(self, *exc) -> None:
        if self.ray is None:
            return
        for ref in self.pending:  # a stopped run: running tasks get KeyboardInterrupt and abort
            self.ray.cancel(ref)
        self.pending = {}
        if self.started:
            self.ray.shutdown()
