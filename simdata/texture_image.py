"""A model's texture image, kept in a file of the disk cache and mapped where it is drawn.

Every process of a run (the parent, each pool worker, the crop workers) used to hold every
model's texture decoded in memory, read back with the mesh from the disk cache and pickled to
each worker: a 2048x2048 texture is 12.6 MB, so a library of 77 official YCB models held about
1 GB per worker before a scene was drawn, and more once shown (pyrender's RGBA copy, the GL
driver's own). A :class:`TextureImage` is a file instead: ``.npy`` (H,W,4) uint8 RGBA, the
array the renderer uploads, memory-mapped when first drawn. It pickles as its path, so a pool
worker gets a few bytes and maps the file itself; the pages are the operating system's page
cache, shared by every process and read only for the models a process draws.
"""
from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import SimdataError

log = logging.getLogger(__name__)

KIND = "textures"  # the disk cache's folder of texture files
# A texture file used this recently is never evicted: a run maps its models' files when it
# draws them, which may be long after it loaded them (or another run filled the cache).
IN_USE_S = 3600.0


def texture_file(key: str) -> Path:
    """Where the texture file of content key ``key`` is: in the disk cache as it is now."""
    from .diskcache import cache_root

    return cache_root() / KIND / f"{key}.npy"


class TextureImage:
    """(H,W,4) uint8 RGBA texture of one model: a file (``path``) mapped when :meth:`rgba` is
    called, or an array in memory (where the disk cache cannot be written, and for
    processes on other machines: :meth:`in_memory`). ``remake()``, where given, makes the
    array again from the model's files if the file is gone or unusable when it is read (the
    disk cache may be deleted at any time: that only costs time); that array is then kept."""

    def __init__(self, shape: tuple[int, int, int], path: Path | None = None,
                 array: np.ndarray | None = None,
                 remake: Callable[[], np.ndarray] | None = None):
        if (path is None) == (array is None):
            raise ValueError("a TextureImage is a path or an array")
        self.shape = tuple(int(s) for s in shape)
        self.path = None if path is None else Path(path)
        self.remake = remake
        self._array = array  # in memory: no file, or made again

    def rgba(self) -> np.ndarray:
        """The (H,W,4) uint8 image: a new read-only mapping of the file at each call (it is
        unmapped, and its file closed, when the caller lets go of it: a process that drew
        thousands of models holds no more files open than the renderer keeps models), or the
        array in memory."""
        if self._array is None:
            return self._map()
        return self._array

    def _map(self, remake: bool = True) -> np.ndarray:
        array, problem = _mapped(self.path, self.shape)
        if array is not None:
            return array
        if remake and self.remake is not None:
            log.info("texture file %s unusable (%s): reading the model's texture again",
                     self.path, problem)
            array = self.remake()
            if array is not None and array.dtype == np.uint8 and array.shape == self.shape:
                self._array = array
                return array
            problem = "the model's files now give another texture"
        raise SimdataError(f"cannot read the texture file {self.path} ({problem}): did the "
                           f"meshes or the disk cache ($SIMDATA_CACHE) change during the run? "
                           f"run the same command again: finished work is kept")

    def is_usable(self) -> bool:
        """Whether :meth:`rgba` will work without remaking: the array is in memory, or the file
        is this user's, others cannot write it, and it holds the shape recorded (its header is
        read, not its pixels). A file is marked as used now: the disk cache removes the least
        recently used first (a read-only cache is still read)."""
        if self._array is not None:
            return True
        if _mapped(self.path, self.shape)[0] is None:
            return False
        try:
            os.utime(self.path)
        except OSError:
            pass
        return True

    def in_memory(self) -> "TextureImage":
        """This texture with its pixels in memory: what travels to another machine."""
        return TextureImage(self.shape, array=np.array(self.rgba()))

    def __repr__(self) -> str:
        where = self.path if self._array is None else "in memory"
        return f"TextureImage({self.shape[1]}x{self.shape[0]}, {where})"


def _mapped(path: Path, shape: tuple) -> tuple[np.ndarray | None, str | None]:
    """(the texture file ``path`` mapped read-only, None) where it holds ``shape`` uint8, else
    (None, why not). A file of another user, or one others may write (who could change the
    pixels, or shorten a mapped file under a worker), is not read, as the disk cache reads no
    such pickle."""
    from .diskcache import is_private

    try:
        if not is_private(os.stat(path)):
            return None, "not this user's own, or others may write it"
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        return None, str(e)
    if array.dtype != np.uint8 or array.shape != shape:
        return None, f"it holds {array.dtype} {array.shape}, not uint8 {shape}"
    return array, None


def rgba_of_image(image) -> np.ndarray | None:
    """(H,W,4) uint8 RGBA of a PIL texture image, the array pyrender's
    ``format_texture_source(image, "RGBA")`` makes of it (and uploads), in one conversion;
    None for a mode that function converts otherwise (16-bit, two-channel...)."""
    if getattr(image, "mode", None) not in ("RGB", "RGBA", "L", "P"):
        return None
    return np.asarray(image.convert("RGBA"))


def mesh_with_texture(mesh, texture: TextureImage | None):
    """``mesh`` (trimesh) for code that reads a texture from the mesh itself (trimesh's
    colour sampling, pyrender.Mesh.from_trimesh): a copy whose material holds ``texture`` as
    its image (RGBA); ``mesh`` itself when ``texture`` is None."""
    if texture is None:
        return mesh
    from PIL import Image

    copy = mesh.copy()
    copy.visual.material.image = Image.fromarray(np.asarray(texture.rgba()))
    return copy


def store_texture(rgba: np.ndarray, key: str | None) -> TextureImage:
    """``rgba`` (H,W,4) uint8 as the texture file of content key ``key`` (of what it was made
    from) in the disk cache, or in memory where there is no key or the cache cannot be written
    (which only costs memory). The folder keeps the disk cache's budget
    ($SIMDATA_CACHE_MESHES_MB): the files used longest ago are removed first, never one used
    in the last IN_USE_S seconds."""
    from .diskcache import pickle_cache_bytes, store_bytes

    rgba = np.ascontiguousarray(rgba, np.uint8)
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"a texture is (H,W,4) RGBA, not {rgba.shape}")
    if key is None:
        return TextureImage(rgba.shape, array=rgba)
    path = texture_file(key)
    buffer = io.BytesIO()
    np.save(buffer, rgba, allow_pickle=False)
    try:
        store_bytes(path, buffer.getvalue(), pickle_cache_bytes(), pattern="*.npy",
                    in_use_s=IN_USE_S)
    except (OSError, SimdataError) as e:
        log.debug("texture not written to the disk cache (%s): kept in memory", e)
        return TextureImage(rgba.shape, array=rgba)
    return TextureImage(rgba.shape, path=path)
