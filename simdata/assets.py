"""Find and load object meshes from the layouts users have, in metres, with clear errors.

Accepted layouts (see :func:`discover_models`):
- a folder of mesh files (``.obj .ply .stl .glb``), one object per file;
- one folder per object (our ``assets/ycb`` and ``../shared/ycb``: ``textured*.obj`` plus an
  optional ``collision*.obj`` convex decomposition and ``model.urdf`` with the mass);
- the official YCB layout ``NNN_name/google_16k/textured.obj``;
- BOP ``models/`` (``obj_NNNNNN.ply`` in millimetres + ``models_info.json``).
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import SimdataError
from .types import ObjectModel

log = logging.getLogger(__name__)

MESH_EXTS = (".obj", ".ply", ".stl", ".glb", ".gltf")
UNIT_SCALES = {"m": 1.0, "cm": 0.01, "mm": 0.001}
# Tabletop objects measure between these bounds (largest side, metres).
MIN_SIZE_M, MAX_SIZE_M = 0.005, 3.0
# Textures are kept at most this many pixels on a side (--max-texture). An object fills at most
# a few hundred pixels of a 640x480 image, so the renderer's mipmapping never reads the finer
# levels of a 4096x4096 texture (official YCB), which cost a quarter of a second per model to
# upload and 48 MB of memory in every worker.
MAX_TEXTURE_PX = 2048
_VISUAL_NAMES = ("google_16k/textured.obj", "textured_simple_reoriented.obj", "textured.obj",
                 "tsdf/textured.obj", "poisson/textured.obj")
_COLLISION_NAMES = ("collision_vhacd.obj", "collision.obj", "google_16k/collision.obj")


@dataclass(frozen=True)
class ModelSource:
    """Where one object's files are. ``unit`` is known for BOP models (mm), else None."""

    name: str
    visual: Path
    collision: Path | None = None
    urdf: Path | None = None
    unit: str | None = None
    obj_id: int | None = None


def _is_mesh(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in MESH_EXTS and not p.name.startswith("collision")


def _bop_models_dir(root: Path) -> Path | None:
    for d in (root, root / "models"):
        if (d / "models_info.json").is_file() and any(d.glob("obj_*.ply")):
            return d
    return None


def discover_models(root: str | Path) -> list[ModelSource]:
    """List the objects under ``root`` (a folder or one mesh file; or several, comma-separated,
    e.g. a user's meshes and `simdata shapes` beside them), sorted by name."""
    parts = [p for p in str(root).split(",") if p] if not Path(root).exists() else [root]
    if len(parts) > 1:
        sources = []
        for part in parts:
            if Path(part).is_dir() and _bop_models_dir(Path(part)) is not None:
                raise SimdataError(f"{part} is a BOP models folder, whose object ids cannot be "
                                   f"combined with other meshes; pass it alone to --meshes")
            sources += discover_models(part)
        return _unique_names(sources, f"occur in several of {root}")
    root = Path(root)
    if not root.exists():
        raise SimdataError(f"mesh path {root} does not exist; pass --meshes a folder of meshes "
                           f"(e.g. assets/ycb)")
    if root.is_file():
        if root.suffix.lower() not in MESH_EXTS:
            raise SimdataError(f"{root} is not a mesh file; use one of {', '.join(MESH_EXTS)}")
        return [ModelSource(root.stem, root)]
    bop = _bop_models_dir(root)
    if bop is not None:
        out = []
        for p in sorted(bop.glob("obj_*.ply")):
            m = re.fullmatch(r"obj_(\d+)", p.stem)
            if m:
                out.append(ModelSource(p.stem, p, unit="mm", obj_id=int(m.group(1))))
        return out
    sources = [ModelSource(p.stem, p) for p in sorted(root.iterdir()) if _is_mesh(p)]
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        src = _object_folder(d)
        if src is not None:
            sources.append(src)
    if not sources:
        raise SimdataError(f"no meshes found in {root}: expected {'/'.join(MESH_EXTS)} files, "
                           f"one folder per object, or BOP models/ (see `simdata assets list`)")
    return _unique_names(sources, f"occur twice in {root}")


def _unique_names(sources: list[ModelSource], where: str) -> list[ModelSource]:
    """``sources`` sorted by name; names that repeat are refused (they name the objects)."""
    names = [s.name for s in sources]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SimdataError(f"object names {dup} {where}; rename one of each")
    return sorted(sources, key=lambda s: s.name)


def _object_folder(d: Path) -> ModelSource | None:
    visual = next((d / n for n in _VISUAL_NAMES if (d / n).is_file()), None)
    if visual is None:
        meshes = sorted(p for p in d.iterdir() if _is_mesh(p))
        if not meshes:
            return None
        if len(meshes) > 1:
            raise SimdataError(f"{d} holds several meshes ({', '.join(p.name for p in meshes)}); "
                               f"keep one per object folder or name the visual one textured.obj")
        visual = meshes[0]
    collision = next((d / n for n in _COLLISION_NAMES if (d / n).is_file()), None)
    urdfs = sorted(d.glob("*.urdf"))
    urdf = d / "model.urdf" if (d / "model.urdf").is_file() else (urdfs[0] if urdfs else None)
    return ModelSource(d.name, visual, collision, urdf)


def detect_unit(max_extent: float, path: Path) -> str:
    """Guess the unit of a tabletop object mesh from its largest side (in file units)."""
    if MIN_SIZE_M <= max_extent <= MAX_SIZE_M:
        return "m"
    if MIN_SIZE_M * 1000 <= max_extent <= MAX_SIZE_M * 1000:
        return "mm"
    raise SimdataError(
        f"mesh {path} is absurdly scaled (largest side {max_extent:.4g} file units): neither "
        f"metres nor millimetres gives an object of {MIN_SIZE_M * 1000:.0f} mm to "
        f"{MAX_SIZE_M:.0f} m; rescale the file or pass --units m|cm|mm")


def _statements(data: bytes, keyword: bytes) -> list[str]:
    """The arguments of every line of an OBJ file's bytes whose first word is ``keyword`` (the
    rest of the line, stripped). Found with bytes.find: a 15k-triangle OBJ is 1.3 MB, which
    decoding and a line regex took 20 ms to scan, twice per model at every start-up."""
    found, i = [], data.find(keyword)
    while i >= 0:
        start = data.rfind(b"\n", 0, i) + 1
        end = data.find(b"\n", i)
        end = len(data) if end < 0 else end
        line = data[start:end].strip()
        if line.split(None, 1)[0] == keyword and len(line) > len(keyword):
            found.append(line[len(keyword):].strip().decode(errors="replace"))
        i = data.find(keyword, end)
    return found


def material_files(visual: Path) -> list[Path]:
    """The files a mesh's look comes from besides itself, whether or not they exist: an OBJ's
    material libraries and the images they name, a PLY's ``comment TextureFile`` images (as
    BOP models carry them); [] for other formats (glb embeds its images)."""
    suffix = visual.suffix.lower()
    if suffix == ".ply":
        with open(visual, "rb") as f:
            header = f.read(65536).split(b"end_header", 1)[0].decode("latin-1")
        return [visual.parent / m for m in re.findall(r"^comment\s+TextureFile\s+(.+?)\s*$", header,
                                                        flags=re.M)]
    if suffix != ".obj":
        return []
    files = []
    for mtl_name in _statements(visual.read_bytes(), b"mtllib"):
        mtl = visual.parent / mtl_name
        files.append(mtl)
        if not mtl.is_file():
            continue
        for line in mtl.read_text(errors="replace").splitlines():
            parts = line.split()
            if parts and parts[0].lower().startswith("map_"):
                files.append(mtl.parent / parts[-1])
    return files


def missing_textures(visual: Path) -> list[Path]:
    """Texture images named by an OBJ's material files that do not exist on disk."""
    return [p for p in material_files(visual) if p.suffix.lower() != ".mtl" and not p.is_file()]


def _urdf_origin(el) -> tuple[np.ndarray, np.ndarray]:
    """(R (3,3), t (3,)) of a URDF <origin xyz rpy> element (identity when absent); rpy are
    fixed-axis roll, pitch, yaw: R = Rz(yaw) Ry(pitch) Rx(roll)."""
    if el is None:
        return np.eye(3), np.zeros(3)
    t = np.array([float(v) for v in el.get("xyz", "0 0 0").split()])
    r, p, y = (float(v) for v in el.get("rpy", "0 0 0").split())
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    Rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    Ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    Rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return Rz @ Ry @ Rx, t


def read_urdf_inertial(urdf: Path) -> tuple[float | None, np.ndarray | None, np.ndarray | None]:
    """(mass kg, COM xyz in metres, inertia diagonal kg m^2) of a URDF's first link, in the
    frame of its visual mesh (the object's frame here): a URDF gives them in the link frame, and
    a <visual><origin> places the mesh in it (YCB's mustard bottle is turned 90 deg). The
    inertia tensor (with its products and the <inertial><origin> rpy) is turned into the mesh
    frame and its diagonal kept: the simulated body's axes are the mesh's."""
    try:
        root = ET.parse(urdf).getroot()
    except ET.ParseError as e:
        raise SimdataError(f"cannot parse {urdf}: {e}; fix the XML or remove the URDF") from None
    link = root.find(".//link")
    inertial = link.find("inertial") if link is not None else None
    if inertial is None:
        return None, None, None
    mass_el, origin_el, inertia_el = (inertial.find(t) for t in ("mass", "origin", "inertia"))
    mass = float(mass_el.get("value")) if mass_el is not None else None
    if mass is not None and not mass > 0:
        raise SimdataError(f"{urdf} gives a non-positive mass ({mass}); fix <mass value=...>")
    visual = link.find("visual/origin")
    R_v, t_v = _urdf_origin(visual)
    com = None
    if origin_el is not None:
        com = np.array([float(v) for v in origin_el.get("xyz", "0 0 0").split()])
        if visual is not None:
            com = R_v.T @ (com - t_v)
    inertia = None
    if inertia_el is not None:
        get = lambda k: float(inertia_el.get(k, 0.0))  # noqa: E731
        inertia = np.array([get("ixx"), get("iyy"), get("izz")])
        full = np.array([[get("ixx"), get("ixy"), get("ixz")],
                         [get("ixy"), get("iyy"), get("iyz")],
                         [get("ixz"), get("iyz"), get("izz")]])
        R = R_v.T @ _urdf_origin(origin_el)[0]  # inertial frame -> mesh frame
        turned = np.diag(R @ full @ R.T)
        if not np.allclose(turned, inertia, rtol=1e-9, atol=0.0):  # same body: same bits
            inertia = turned
    return mass, com, inertia


def _load_trimesh(path: Path):
    import trimesh

    try:
        loaded = trimesh.load(str(path), force="mesh", process=True)
    except Exception as e:  # trimesh raises many types on bad files
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SimdataError(f"cannot read mesh {path}: {msg}; check the file or re-export it "
                           f"as OBJ/PLY") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise SimdataError(f"mesh {path} is degenerate (no triangles); re-export it with faces")
    if not np.isfinite(loaded.vertices).all():
        raise SimdataError(f"mesh {path} has NaN/inf vertices; repair or re-export it")
    if loaded.area <= 0 or np.min(loaded.extents) <= 0 and np.count_nonzero(loaded.extents) < 2:
        raise SimdataError(f"mesh {path} is degenerate (zero area or collapsed to a line); "
                           f"re-export it")
    return loaded


def _plain_material(mesh):
    """Replace a textured visual that lacks its image with the material's diffuse colour.
    Returns the mesh and that colour (RGB)."""
    import trimesh

    color = np.array([160, 160, 160, 255], np.uint8)
    mat = getattr(mesh.visual, "material", None)
    for attr in ("diffuse", "main_color"):
        c = getattr(mat, attr, None)
        if c is not None and len(np.atleast_1d(c)) >= 3:
            color = np.asarray(c, np.uint8).ravel()[:4]
            if color.size == 3:
                color = np.append(color, 255)
            break
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=np.tile(color, (len(mesh.vertices), 1)))
    return mesh, color[:3].tolist()


def file_fingerprint(*paths: Path | None) -> str:
    """sha256 over the bytes of the given files (None entries skipped), hex, 16 chars."""
    h = hashlib.sha256()
    for p in paths:
        if p is not None:
            h.update(p.name.encode())
            h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]


# Bump when what _load_look returns, or how it is computed, changes: cached meshes of older
# code are then not read.
MESH_CACHE_VERSION = "7"


def _look_key(src: ModelSource, units: str, max_texture: int = MAX_TEXTURE_PX) -> str | None:
    """Content key of what _load_look(src, units, max_texture) returns: the bytes of the mesh
    file and of the files its look comes from (by name relative to the mesh: the key does not
    depend on where the files are), the units asked, the texture cap, and the versions that
    read them. None (nothing cached) where those files are unknown (glTF's external buffers)
    or unreadable (the load then says why)."""
    import sys

    import PIL
    import trimesh

    if src.visual.suffix.lower() == ".gltf":
        return None
    h = hashlib.sha256(f"{MESH_CACHE_VERSION} trimesh {trimesh.__version__} numpy {np.__version__} "
                       f"pillow {PIL.__version__} python {sys.version_info[:2]} units {units} "
                       f"{src.unit} max_texture {max_texture}".encode())
    try:
        for p in [src.visual, *material_files(src.visual)]:
            data = p.read_bytes() if p.is_file() else None
            part = "missing" if data is None else f"{len(data)} {hashlib.sha256(data).hexdigest()}"
            h.update(f"\n{os.path.relpath(p, src.visual.parent)}\n{part}".encode())
    except OSError:
        return None
    return h.hexdigest()[:32]


def _load_look(src: ModelSource, units: str, max_texture: int = MAX_TEXTURE_PX,
               key: str | None = None) -> dict:
    """The mesh of ``src`` in metres with its look (or a plain material where its texture is
    missing; its texture at most ``max_texture`` pixels on a side, 0 = as stored), checked;
    with what load_model tells the user about it. An OBJ-style texture image (SimpleMaterial,
    with UVs, an RGB, RGBA, L or P image whose colours at the vertices could be sampled)
    leaves the mesh for a texture file of the disk cache named ``key`` (in memory without
    one): ``"texture"``, a TextureImage; any other look stays in the mesh. Nothing in it
    depends on where the files are or what the object is called: it is cached by content."""
    mesh = _load_trimesh(src.visual)
    max_extent = float(np.max(mesh.extents))
    if units == "auto":
        unit = src.unit or detect_unit(max_extent, src.visual)
    elif units in UNIT_SCALES:
        unit = units
    else:
        raise SimdataError(f"unknown --units {units!r}; use auto, m, cm or mm")
    scale = UNIT_SCALES[unit]
    size_m = max_extent * scale
    if not MIN_SIZE_M <= size_m <= MAX_SIZE_M:
        raise SimdataError(f"mesh {src.visual} measures {size_m:.4g} m in {unit}; that is no "
                           f"tabletop object; fix --units or rescale the file")
    if unit != "m":
        mesh.apply_scale(scale)
    textured = getattr(mesh.visual, "kind", None) == "texture"
    plain = plain_rgb = None  # why the look was replaced by a plain material, and its colour
    if missing_textures(src.visual):
        plain = "missing"
    elif textured and getattr(mesh.visual.material, "image", None) is None \
            and getattr(mesh.visual.material, "baseColorTexture", None) is None:
        plain = "no image"
    if plain:
        mesh, plain_rgb = _plain_material(mesh)
        textured = False
    # the vertex colours (the BOP models' look) come from the texture as stored
    colors = _cacheable_colors(mesh)
    texture = None
    if textured:
        cap_texture(mesh, max_texture)
        texture = _take_texture(mesh, key) if colors is not None else None
    compute_derived(mesh)
    return {"mesh": mesh, "unit": unit, "scale": scale, "size_m": size_m, "textured": textured,
            "plain": plain, "plain_rgb": plain_rgb, "vertex_colors": colors, "texture": texture}


def _take_texture(mesh, key: str | None):
    """Move the texture image of ``mesh`` (an OBJ's SimpleMaterial, with UVs) out of it into a
    TextureImage (simdata.texture_image: a file of the disk cache named ``key``), which the
    renderer reads when it first draws the model; None, and the mesh unchanged, for other
    materials and image modes (pyrender formats those itself)."""
    import trimesh

    from .texture_image import rgba_of_image, store_texture

    mat = getattr(mesh.visual, "material", None)
    if type(mat) is not trimesh.visual.material.SimpleMaterial or mesh.visual.uv is None:
        return None
    rgba = rgba_of_image(mat.image)
    if rgba is None:
        return None
    mat.image = None
    return store_texture(rgba, key)


def _texture_here(texture, key: str | None):
    """``texture`` of a look (maybe read back from the disk cache) with its file where the
    cache is now (a cache moved elsewhere keeps its files)."""
    from .texture_image import TextureImage, texture_file

    if texture is None or texture.path is None or key is None:
        return texture
    return TextureImage(texture.shape, path=texture_file(key))


def _texture_usable(look: dict, key: str) -> bool:
    """Whether a look read back from the disk cache has its texture (file) to go with it."""
    texture = _texture_here(look["texture"], key)
    return texture is None or texture.is_usable()


def _texture_again(src: ModelSource, units: str, max_texture: int, key: str):
    """The texture array load_model gave ``src``, made again from its files (and its texture
    file written again): for a process that finds that file gone. None if they now give none."""
    texture = _load_look(src, units, max_texture, key)["texture"]
    return None if texture is None else texture.rgba()


# What trimesh computed on the way to the derived values that no process asks for again
# (per-face triangles and edges): 3.8 of the 5.5 MB a pickled 15.7k-triangle real YCB mesh
# took, which every process read back from the disk cache and every pool worker from the
# pool's shared file. Anything that does ask recomputes them (a few ms).
_TRANSIENT = ("triangles", "triangles_cross", "face_angles", "edges", "edges_sorted", "edges_face")


def compute_derived(mesh) -> None:
    """Compute what every process asks of a loaded mesh: its vertex normals (renderer, PLY
    writer), whether it is a closed volume, its convex hull (physics, crops' resting poses,
    bins) and their mass properties (physics). trimesh keeps them in the mesh's cache, which
    it pickles, so a mesh read back from the disk cache has them: about 120 ms per process
    for the 10 real YCB models, in the parent and every worker. The intermediate values
    (_TRANSIENT) leave the cache."""
    mesh.vertex_normals
    mesh.convex_hull.mass_properties
    if mesh.is_volume:
        mesh.mass_properties
    cached = getattr(getattr(mesh, "_cache", None), "cache", {})  # trimesh's, not public
    for name in _TRANSIENT:
        cached.pop(name, None)


def check_max_texture(max_texture: int) -> None:
    """Refuse a texture cap no load can use (SimdataError naming --max-texture)."""
    if max_texture < 0:
        raise SimdataError(f"--max-texture {max_texture} must be 0 (textures as stored) or a "
                           f"side length in pixels")


def cap_texture(mesh, max_px: int) -> None:
    """Shrink the texture image of ``mesh`` (trimesh, in place) to at most ``max_px`` pixels
    on a side (0: leave it), by area averaging as the renderer's own mipmaps do; the UVs are
    unchanged (they are relative)."""
    from PIL import Image

    mat = getattr(mesh.visual, "material", None)
    for attr in ("image", "baseColorTexture"):
        img = getattr(mat, attr, None)
        if img is None:
            continue
        w, h = img.size
        if max_px and max(w, h) > max_px:
            s = max_px / max(w, h)
            setattr(mat, attr, img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BOX))
        return


def vertex_colors_of(mesh) -> np.ndarray:
    """(V,4) uint8 RGBA, the look at the vertices: a texture sampled at the vertices' UVs
    (seconds for a 4096x4096 one, hence cached with the loaded mesh), or the vertex colours."""
    visual = mesh.visual.to_color() if mesh.visual.kind == "texture" else mesh.visual
    return np.asarray(visual.vertex_colors, np.uint8)


def _cacheable_colors(mesh) -> np.ndarray | None:
    try:
        return vertex_colors_of(mesh)
    except Exception:  # an odd texture: the BOP writer asks trimesh again, and says why
        return None


def _tell(src: ModelSource, look: dict) -> list[str]:
    """Log what the user should know about a loaded model (unit guessed, texture replaced);
    returns the warnings the dataset records (a missing texture)."""
    if look["unit"] != "m":
        log.info("%s: units detected as %s (largest side %.1f mm)", src.name, look["unit"],
                 look["size_m"] * 1e3)
    if not look["plain"]:
        return []
    missing = missing_textures(src.visual)
    reason = (f"texture {missing[0]} is missing" if look["plain"] == "missing" and missing
              else "material has no texture image")
    log.warning("%s: %s; using a plain material (rgb %s) instead", src.name, reason,
                look["plain_rgb"])
    return [reason] if look["plain"] == "missing" else []


def _plausible_inertia(src: ModelSource, mesh, mass, com, inertia, warnings: list[str]):
    """The URDF's ``inertia`` if a body of its mass and of the mesh's size can have it, else
    None (the physics then takes the mesh's inertia at that mass), with a warning."""
    from .physics import inertia_problem

    if inertia is None or mass is None:
        return inertia
    centre = com if com is not None else mesh.centroid
    problem = inertia_problem(inertia, mass, centre, mesh.vertices)
    if problem is None:
        return inertia
    message = (f"{src.urdf}: {problem}; simulating the mesh's inertia at {mass:.3g} kg instead "
               f"(give the object's own inertia in <inertia> to use it)")
    log.warning("%s: %s", src.name, message)
    warnings.append(message)
    return None


def load_model(src: ModelSource, obj_id: int, units: str = "auto",
               max_texture: int = MAX_TEXTURE_PX) -> ObjectModel:
    """Load one object in metres, check it, and report unit and texture problems; its texture
    is kept at most ``max_texture`` pixels on a side (0: as stored). The loaded mesh is cached
    by content (simdata.diskcache): a second start-up reads it back instead of parsing the
    mesh and decoding its texture. An OBJ's texture is the model's ``texture``, a file of the
    cache read when a renderer first draws the model (simdata.texture_image), not held by
    every process that has the model."""
    from .diskcache import cached_pickle

    check_max_texture(max_texture)
    key = _look_key(src, units, max_texture)
    look = (cached_pickle("meshes", key, lambda: _load_look(src, units, max_texture, key),
                          usable=functools.partial(_texture_usable, key=key)) if key
            else _load_look(src, units, max_texture))
    texture = _texture_here(look["texture"], key)
    if texture is not None and texture.path is not None:
        texture.remake = functools.partial(_texture_again, src, units, max_texture, key)
    warnings = _tell(src, look)
    mass = com = inertia = None
    if src.urdf is not None:
        mass, com, inertia = read_urdf_inertial(src.urdf)
        inertia = _plausible_inertia(src, look["mesh"], mass, com, inertia, warnings)
    return ObjectModel(obj_id=obj_id, name=src.name, mesh=look["mesh"], source=src.visual,
                       scale=look["scale"], unit=look["unit"], collision_path=src.collision,
                       mass_kg=mass, com_m=com, inertia_diag=inertia, textured=look["textured"],
                       warnings=warnings, content_key=key or "",
                       vertex_colors=look["vertex_colors"], texture=texture)


def load_models(root: str | Path, units: str = "auto",
                max_texture: int = MAX_TEXTURE_PX) -> list[ObjectModel]:
    """Discover and load every object under ``root``; obj ids are 1..N in name order
    (BOP models keep their own ids); textures at most ``max_texture`` pixels on a side."""
    sources = discover_models(root)
    return [load_model(s, s.obj_id or i + 1, units, max_texture) for i, s in enumerate(sources)]


def models_fingerprint(root: str | Path) -> dict[str, str]:
    """name -> fingerprint of each object's files, to tell whether a dataset's meshes changed."""
    return {s.name: file_fingerprint(s.visual, s.collision, s.urdf) for s in discover_models(root)}
