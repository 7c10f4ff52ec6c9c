"""Results that depend only on a mesh's numbers or files, cached on disk by content, so that
start-up (loaded meshes, stable poses, BOP model info, symmetries) costs a file read once a
mesh has been seen.

The cache lives in $SIMDATA_CACHE or ~/.cache/simdata (delete it at any time: it only costs
time); a cache that cannot be written or read only costs time too. Values are JSON (Python
floats round-trip exactly) or pickles of arrays: a cached result equals a fresh one bit for
bit, and output stays byte-identical with a cold or a warm cache.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)


def cache_root() -> Path:
    return Path(os.environ.get("SIMDATA_CACHE", Path.home() / ".cache" / "simdata"))


def array_digest(*arrays, version: str = "") -> str:
    """sha256 (hex, 32 chars) over ``version``, trimesh's version (whose algorithms the cached
    results come from: an upgrade recomputes them) and the arrays' dtypes, shapes and bytes."""
    import trimesh

    h = hashlib.sha256(f"{version} trimesh {trimesh.__version__}".encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:32]


def cached_json(kind: str, key: str, compute: Callable[[], Any]) -> Any:
    """``compute()``'s JSON-able result, read from ``cache_root()/kind/key.json`` when there."""
    from .errors import SimdataError
    from .fileio import write_json_atomic

    path = cache_root() / kind / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    result = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, result, indent=None)
    except (OSError, SimdataError) as e:
        log.debug("%s cache not written: %s", kind, e)
    return result


def pickle_cache_bytes() -> int:
    """How many bytes each folder of large cached files may hold, the loaded meshes and their
    textures ($SIMDATA_CACHE_MESHES_MB, default 4096 MB; a 2048x2048 texture file is 17 MB):
    beyond this the least recently used go, so a library edited over months does not fill
    the disk."""
    from .errors import SimdataError

    text = os.environ.get("SIMDATA_CACHE_MESHES_MB", "4096")
    try:
        mb = float(text)
    except ValueError:
        mb = -1.0
    if not mb >= 0:
        raise SimdataError(f"SIMDATA_CACHE_MESHES_MB={text!r} must be a number of megabytes "
                           f"(e.g. 4096)")
    return int(mb * 2**20)


def cached_pickle(kind: str, key: str, compute: Callable[[], Any],
                  max_bytes: int | None = None,
                  usable: Callable[[Any], bool] = lambda result: True) -> Any:
    """``compute()``'s result, read from ``cache_root()/kind/key.pickle`` when there: for what
    JSON cannot hold (a loaded mesh). The key must cover everything the
    result depends on (file contents, library versions). Unpickling runs code, so only a file
    this user owns and nobody else may write is read (else the result is computed and not
    written there); a pickle that cannot be read is recomputed and replaced. The folder keeps
    at most ``max_bytes`` (default pickle_cache_bytes(), $SIMDATA_CACHE_MESHES_MB): the entries
    used longest ago are removed first. A result read back for which ``usable(result)`` is
    false (it names a file that was removed since) is computed again and replaced."""
    from .errors import SimdataError

    max_bytes = pickle_cache_bytes() if max_bytes is None else max_bytes
    path = cache_root() / kind / f"{key}.pickle"
    try:
        with open(path, "rb") as f:
            if not is_private(os.fstat(f.fileno())):
                log.warning("%s is not this user's own or others may write it: not read; "
                            "point $SIMDATA_CACHE at a private folder", path)
                return compute()
            result = pickle.load(f)
        if usable(result):
            try:
                os.utime(path)  # used now: the last to be evicted
            except OSError:  # a read-only cache is still read
                pass
            return result
    except FileNotFoundError:
        pass
    except Exception as e:  # truncated by hand, or from another library version
        log.debug("%s cache entry %s unreadable (%s): recomputed", kind, path, e)
    result = compute()
    try:
        store_bytes(path, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL), max_bytes)
    except (OSError, SimdataError) as e:
        log.debug("%s cache not written: %s", kind, e)
    return result


def is_private(st: os.stat_result) -> bool:
    """Whether a cached file (its stat) is this user's own and nobody else may write it: only
    such files are read back (unpickling runs code; a mapped file could change under us)."""
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def store_bytes(path: Path, data: bytes, max_bytes: int, pattern: str = "*.pickle",
                in_use_s: float = 0.0) -> None:
    """Write a cache entry atomically, readable back and by this user only writable whatever
    the umask, then keep its folder to ``max_bytes`` (:func:`evict`). Raises OSError or
    SimdataError where it cannot be written."""
    from .fileio import write_bytes_atomic

    write_bytes_atomic(path, data)
    os.chmod(path, 0o644)
    evict(path.parent, max_bytes, keep=path, pattern=pattern, in_use_s=in_use_s)


def evict(folder: Path, max_bytes: int, keep: Path, pattern: str = "*.pickle",
          in_use_s: float = 0.0) -> None:
    """Remove the least recently used files ``pattern`` of ``folder`` (by modification time,
    which a read refreshes) until the rest hold at most ``max_bytes``; ``keep`` stays, and so
    does every file used in the last ``in_use_s`` seconds (the folder may then hold more)."""
    import time

    entries = []
    for p in folder.glob(pattern):
        try:
            st = p.stat()
        except FileNotFoundError:  # another process evicted it
            continue
        entries.append((st.st_mtime, p, st.st_size))
    total = sum(size for _, _, size in entries)
    recent = time.time() - in_use_s
    for mtime, p, size in sorted(entries):
        if total <= max_bytes or mtime >= recent:
            break
        if p != keep:
            p.unlink(missing_ok=True)
            total -= size
