"""Training on several processes (torchrun): the ranks, the averaging that keeps them one run,
and the launcher behind ``adapt train --nproc N``.

Data parallel over W processes (one per GPU, or CPU processes): the global batch B
(``--batch``) is split into W shares of B/W; each rank draws the same batches as a single
process would and keeps its share (adapt.data ``batch(step, n, part)``). Every rank builds the
same nets from the same seed; before each optimizer step the gradients are averaged over the
ranks (:func:`average_gradients`, called by ``methods.base.step_optimizer``, which every method
steps through), and after each training step the float buffers (batch-norm running statistics)
are averaged, so the nets and optimizers stay identical on every rank and a checkpoint holds
the one run. What a method keeps besides (image pools, history buffers) is each rank's own and
is checkpointed per rank. Why this and not DistributedDataParallel: the methods run several
nets through several optimizers with partial freezing and call nets' ``encode``/``decode``,
which DDP's forward hooks do not see; averaging at the optimizer step needs no change to them.

What differs from one process with the same global batch: batch norm normalises with each
share's statistics (B/W samples instead of B), losses averaged over a varying count (pixels
not ignored in segmentation) weigh shares equally, and noise and dropout are drawn per rank
(rank 0 keeps the single-process stream). Without those (a net without batch norm, dropout or
noise: GG-CNN2 on the grasp task) the weights agree with a single process to float rounding.

One assumption: a parameter has a gradient on every rank or on none at each optimizer step
(the methods' control flow depends on the step and the options, never on the data).

Backends: gloo on CPU, NCCL on CUDA (one GPU per process, ``cuda:LOCAL_RANK``).
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from simdata.errors import SimdataError

# collectives wait this long: rank 0 evaluates (--eval-every) while the others wait at the next step
TIMEOUT = timedelta(minutes=60)
NOISE_STREAM = 1000  # seed_for stream of rank r's noise and dropout (rank 0 keeps stream 0)


@dataclass(frozen=True)
class Ranks:
    """Where this process stands: ``rank`` of ``world`` processes, ``local`` on its machine."""

    rank: int = 0
    world: int = 1
    local: int = 0

    @property
    def main(self) -> bool:
        """Rank 0 writes the run folder (logs, samples, checkpoints, TensorBoard)."""
        return self.rank == 0

    def share(self, batch: int) -> slice | None:
        """This rank's part of a global batch (None: all of it, one process)."""
        if self.world == 1:
            return None
        if batch % self.world:
            raise SimdataError(f"--batch {batch} is the global batch, split over {self.world} "
                               f"processes: use a multiple of {self.world}")
        n = batch // self.world
        return slice(self.rank * n, (self.rank + 1) * n)

    def noise_stream(self) -> int:
        return 0 if self.rank == 0 else NOISE_STREAM + self.rank


@contextlib.contextmanager
def from_env(device_type: str):
    """The ranks torchrun started this process as (env RANK, WORLD_SIZE, LOCAL_RANK), with
    the process group open inside the block (gloo for ``device_type`` cpu, NCCL for cuda);
    ``Ranks()`` outside torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        yield Ranks()
        return
    ranks = Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device_type == "cuda":
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))  # the same test on every rank
        if local_world > torch.cuda.device_count():
            raise SimdataError(f"{local_world} processes on {torch.cuda.device_count()} GPU(s): "
                               f"start at most one process per GPU (--nproc)")
        torch.cuda.set_device(ranks.local)
    dist.init_process_group("nccl" if device_type == "cuda" else "gloo", timeout=TIMEOUT)
    try:
        yield ranks
    except BaseException:
        dist.destroy_process_group()  # torchrun stops the other ranks
        raise
    # rank 0 writes the last checkpoint after the last collective; a rank that tore its gloo
    # pairs down meanwhile was seen to abort ("terminate called without an active exception")
    # on a loaded machine, so the ranks leave together
    dist.barrier()
    dist.destroy_process_group()


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _average(tensors: list[torch.Tensor]) -> None:
    """Replace each tensor (same device and dtype) by its mean over the ranks, in one call."""
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    flat = _flatten_dense_tensors(tensors)
    dist.all_reduce(flat)  # gloo has no AVG: sum, then divide
    flat.div_(dist.get_world_size())
    for t, mean in zip(tensors, _unflatten_dense_tensors(flat, tensors)):
        t.copy_(mean)


def average_gradients(params) -> None:
    """Average the gradients of ``params`` over the ranks (a no-op in one process)."""
    if world_size() == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    for dtype in {g.dtype for g in grads}:  # one call per dtype (all float32 here)
        _average([g for g in grads if g.dtype == dtype])


def average_buffers(nets) -> None:
    """Average the float buffers (batch-norm running statistics) of ``nets`` over the ranks."""
    if world_size() == 1:
        return
    bufs = [b for net in nets for b in net.buffers() if b.is_floating_point()]
    for dtype in {b.dtype for b in bufs}:
        _average([b for b in bufs if b.dtype == dtype])


def mean_over_ranks(values: list[float], device: torch.device) -> list[float]:
    """The mean over the ranks of each number (the logged losses of each share)."""
    if world_size() == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / dist.get_world_size()).tolist()


def min_over_ranks(value: int, device: torch.device) -> int:
    if world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


def gather(obj) -> list | None:
    """Every rank's ``obj`` (picklable, on the CPU) as a list on rank 0; None on the others."""
    if world_size() == 1:
        return [obj]
    out = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


ERRORS_ENV = "ADAPT_RANK_ERRORS"  # folder where ranks started by launch() leave their errors


def report_error(message: str) -> None:
    """Say ``message`` (one line) once for the run: rank 0 prints it; under launch() every
    rank also leaves it in $ADAPT_RANK_ERRORS, so launch() can print a failure that only
    another rank met (a bad frame in its share); under a bare torchrun the other ranks print
    it themselves, with their rank."""
    rank = int(os.environ.get("RANK", "0"))
    folder = os.environ.get(ERRORS_ENV)
    if rank == 0:
        print(message, file=sys.stderr)
    elif not folder:
        print(f"{message} (rank {rank})", file=sys.stderr)
    if folder:
        with contextlib.suppress(OSError):
            with open(os.path.join(folder, f"{rank}.txt"), "w") as f:
                f.write(message)


def _errors_of_other_ranks(folder: str) -> list[str]:
    """What ranks other than 0 reported that rank 0 did not (rank 0 printed its own)."""
    said = {}
    for name in os.listdir(folder):
        with contextlib.suppress(OSError, ValueError):
            said[int(name.split(".")[0])] = open(os.path.join(folder, name)).read()
    return [f"{m} (rank {r})" for r, m in sorted(said.items()) if r and m != said.get(0)]


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``python -m adapt ARGV`` in ``nproc`` processes on this machine with torchrun
    (torch.distributed.run, standalone rendezvous on a free port); the exit status of the
    first that failed, else 0. Rank 0 prints its error; errors only other ranks met are
    printed here, with their rank (:func:`report_error`)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    if nproc < 1:
        raise SimdataError(f"--nproc {nproc}: start 1 process or more")
    if "OMP_NUM_THREADS" not in os.environ:  # torchrun's default is 1 thread; share the cores
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    args = parse_args(["--standalone", f"--nproc-per-node={nproc}", "--max-restarts=0",
                       "-m", "adapt"])
    args.training_script_args = _without_nproc(argv)  # not parsed: torchrun's options abbreviate
    elastic = logging.getLogger("torch.distributed.elastic")
    level = elastic.level
    elastic.setLevel(logging.CRITICAL)  # its per-failure lines would repeat the ranks' own message
    errors = tempfile.TemporaryDirectory(prefix="adapt-ranks-")
    os.environ[ERRORS_ENV] = errors.name
    try:
        run(args)
    except ChildFailedError as e:
        codes = {f.local_rank: f.exitcode for f in e.failures.values()}
        failed = next((c for c in codes.values() if c > 0), None)
        for line in _errors_of_other_ranks(errors.name):
            print(line, file=sys.stderr)
        if failed is None:  # killed, not failed: nothing in the process said why
            # torchrun stops the others with SIGTERM once one is gone: name another signal first
            rank, code = min(codes.items(), key=lambda rc: (rc[1] == -signal.SIGTERM, rc[0]))
            raise SimdataError(f"process {rank} of {nproc} was killed by signal {-code} (out of "
                               f"memory?); rerun with --resume to continue from the last "
                               f"checkpoint") from None
        return failed
    except SignalException:  # Ctrl-C or a kill: torchrun passed it on to the ranks, which say so
        return 130
    finally:
        elastic.setLevel(level)
        os.environ.pop(ERRORS_ENV, None)
        errors.cleanup()
    return 0


def _without_nproc(argv: list[str]) -> list[str]:
    """``argv`` less ``--nproc N`` / ``--nproc=N``: the processes it starts train."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out
