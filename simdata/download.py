"""Fetch the official YCB object models (needs a network; never called by tests or `render`).

Archives come from the YCB benchmark's public bucket as ``<object>_<kind>.tgz`` and unpack to
``DEST/NNN_name/google_16k/textured.obj``, the layout ``simdata render --meshes DEST`` reads.
Each object is downloaded to a temporary name and moved into place when complete, so an
interrupted download resumes with the next object that is not there yet.
"""
from __future__ import annotations

import json
import logging
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from .errors import SimdataError

log = logging.getLogger(__name__)

YCB_BASE_URL = "http://ycb-benchmarks.s3-website-us-east-1.amazonaws.com/data/"
YCB_KINDS = ("google_16k", "google_64k", "google_512k", "berkeley_processed")


def ycb_archive_url(base_url: str, obj: str, kind: str = "google_16k") -> str:
    """URL of one object's archive: google_* meshes sit under google/, the rest under berkeley/."""
    folder = "google" if kind.startswith("google") else "berkeley"
    return f"{base_url.rstrip('/')}/{folder}/{obj}_{kind}.tgz"


def _open(url: str, timeout: float):
    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise SimdataError(f"cannot download {url} ({reason}); check the network, or copy the "
                           f"YCB models into the destination by hand") from None


def list_ycb_objects(base_url: str = YCB_BASE_URL, timeout: float = 60) -> list[str]:
    with _open(f"{base_url.rstrip('/')}/objects.json", timeout) as r:
        return list(json.loads(r.read())["objects"])


def download_ycb(dest: str | Path, objects: list[str] | None = None, kind: str = "google_16k",
                 base_url: str = YCB_BASE_URL, timeout: float = 60, progress: bool = True) -> list[Path]:
    """Download and unpack YCB objects into ``dest``; returns the object folders.

    ``objects=None`` means every object listed in the bucket's objects.json.
    """
    from tqdm import tqdm

    if kind not in YCB_KINDS:
        raise SimdataError(f"unknown YCB model kind {kind!r}; choose from {', '.join(YCB_KINDS)}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    objects = objects or list_ycb_objects(base_url, timeout)
    done = []
    for obj in tqdm(objects, unit="object", desc="ycb", disable=not progress):
        final = dest / obj / kind
        if final.is_dir():
            done.append(final.parent)
            continue
        url = ycb_archive_url(base_url, obj, kind)
        tmp_tgz, tmp_dir = dest / f".tmp-{obj}-{kind}.tgz", dest / f".tmp-{obj}-{kind}"
        try:
            with _open(url, timeout) as r, open(tmp_tgz, "wb") as f:
                shutil.copyfileobj(r, f, length=1 << 20)
            shutil.rmtree(tmp_dir, ignore_errors=True)
            try:
                with tarfile.open(tmp_tgz) as tar:
                    tar.extractall(tmp_dir, filter="data")  # refuses paths that escape tmp_dir
            except (tarfile.TarError, OSError) as e:
                raise SimdataError(f"archive {url} is corrupt ({e}); rerun to download it again") from None
            unpacked = tmp_dir / obj / kind
            if not unpacked.is_dir():
                raise SimdataError(f"archive {url} does not hold {obj}/{kind}/; is the object name right?")
            (dest / obj).mkdir(exist_ok=True)
            unpacked.rename(final)
            done.append(final.parent)
        finally:
            tmp_tgz.unlink(missing_ok=True)
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return done
