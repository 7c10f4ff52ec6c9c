"""Headless rendering of a settled scene with pyrender: RGB, depth, masks and normals.

Per view the renderer draws three passes (every pass culls back faces, as pyrender's
segmentation passes always do: colour, depth and masks see the same surfaces, and a closed mesh
is shaded once per pixel instead of front and back, which halves the colour pass):
1. the lit, antialiased colour pass (colour read back, not its depth), with pyrender's own
   shaders compiled for the scene's number of lights (see _FixedLightsCache);
2. one geometry pass of everything, with our own shader -> camera-frame unit normals in RGB,
   the instance id in alpha (visible masks, mask_visib) and metric z-depth from its depth
   buffer: ids, normals and depth of a pixel come from one rasterization;
3. one pass for the full silhouettes (mask) of up to 24 objects, one bit each (colour only);
   none when the object is alone in the scene (a crop), where the silhouette is the visible
   mask.
Each pass reads back only the buffers it uses: on a CPU renderer (llvmpipe) a pass costs its
rasterization plus a resolve and a copy per buffer read.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess
import sys

import numpy as np

from .errors import SimdataError
from .randomize import pattern_image, vertex_pattern
from .texture_image import rgba_of_image
from .transforms import opencv_to_opengl_camera
from .types import Frame, Intrinsics, ObjectModel, Scene, Table

log = logging.getLogger(__name__)

DEFAULT_MSAA = 4  # antialiasing samples per pixel of the colour pass: pyrender's
MSAA_CHOICES = (0, 2, 4, 8, 16)

# OSMesa's probe renders a box with pyrender.
_OSMESA_PROBE = ("import pyrender, trimesh; r = pyrender.OffscreenRenderer(8, 8); s = pyrender.Scene();"
                 "s.add(pyrender.Mesh.from_trimesh(trimesh.creation.box()));"
                 "s.add(pyrender.PerspectiveCamera(1.0), pose=[[1,0,0,0],[0,1,0,0],[0,0,1,3],[0,0,0,1]]);"
                 "r.render(s); r.delete()")
# EGL's probe makes the context pyrender's EGL platform makes (the device of $EGL_DEVICE_ID, or
# the default display where devices cannot be listed; an OpenGL 4.1 core context, made current)
# with PyOpenGL alone: importing pyrender and trimesh made that probe take 0.7-1.9 s of every
# start-up where $PYOPENGL_PLATFORM is not set, this 0.2 s.
_EGL_PROBE = """
import ctypes, os
from OpenGL import EGL, arrays
from OpenGL import GL

def need(ok, what):  # not assert: $PYTHONOPTIMIZE would drop it
    if not ok:
        raise SystemExit(what)

def ext(name, result, *args):
    address = EGL.eglGetProcAddress(name)
    if not address:
        return None
    f = ctypes.CFUNCTYPE(result)(address)
    f.argtypes = args
    return f

query = ext("eglQueryDevicesEXT", EGL.EGLBoolean, EGL.EGLint, ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(EGL.EGLint))
platform_display = ext("eglGetPlatformDisplayEXT", EGL.EGLDisplay, EGL.EGLenum, ctypes.c_void_p,
                       ctypes.POINTER(EGL.EGLint))
index = int(os.environ.get("EGL_DEVICE_ID", "0"))
if query is None and index == 0:
    display = EGL.eglGetDisplay(EGL.EGL_DEFAULT_DISPLAY)
else:
    n = EGL.EGLint()
    need(query(0, None, ctypes.byref(n)) and index < n.value, "no such EGL device")
    devices = (ctypes.c_void_p * n.value)()
    need(query(n.value, devices, ctypes.byref(n)), "eglQueryDevicesEXT")
    display = platform_display(0x313F, devices[index], None)  # EGL_PLATFORM_DEVICE_EXT
need(EGL.eglInitialize(display, ctypes.c_long(), ctypes.c_long()), "eglInitialize")
config_attributes = arrays.GLintArray.asArray([
    EGL.EGL_SURFACE_TYPE, EGL.EGL_PBUFFER_BIT, EGL.EGL_BLUE_SIZE, 8, EGL.EGL_RED_SIZE, 8,
    EGL.EGL_GREEN_SIZE, 8, EGL.EGL_DEPTH_SIZE, 24, EGL.EGL_COLOR_BUFFER_TYPE, EGL.EGL_RGB_BUFFER,
    EGL.EGL_RENDERABLE_TYPE, EGL.EGL_OPENGL_BIT, EGL.EGL_CONFORMANT, EGL.EGL_OPENGL_BIT, EGL.EGL_NONE])
context_attributes = arrays.GLintArray.asArray([
    EGL.EGL_CONTEXT_MAJOR_VERSION, 4, EGL.EGL_CONTEXT_MINOR_VERSION, 1,
    EGL.EGL_CONTEXT_OPENGL_PROFILE_MASK, EGL.EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT, EGL.EGL_NONE])
configs, count = (EGL.EGLConfig * 1)(), ctypes.c_long()
need(EGL.eglChooseConfig(display, config_attributes, configs, 1, count) and count.value > 0,
     "eglChooseConfig")
need(EGL.eglBindAPI(EGL.EGL_OPENGL_API), "eglBindAPI")
context = EGL.eglCreateContext(display, configs[0], EGL.EGL_NO_CONTEXT, context_attributes)
need(context and EGL.eglMakeCurrent(display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE, context),
     "eglMakeCurrent")
need(GL.glGetString(GL.GL_VERSION), "glGetString")
"""


def choose_gl_platform() -> str:
    """Pick the headless OpenGL platform: $PYOPENGL_PLATFORM if set, else EGL, else OSMesa.

    The choice has to be made before OpenGL is first imported, so each candidate is probed
    in a subprocess; the winner is written to $PYOPENGL_PLATFORM for this process and the
    worker processes it starts.
    """
    current = os.environ.get("PYOPENGL_PLATFORM")
    if current:
        return current
    for platform in ("egl", "osmesa"):
        env = dict(os.environ, PYOPENGL_PLATFORM=platform)
        env.pop("DISPLAY", None)  # pyrender asks EGL for its display without one too
        probe = _EGL_PROBE if platform == "egl" else _OSMESA_PROBE
        try:
            ok = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                                timeout=120).returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
        if ok:
            os.environ["PYOPENGL_PLATFORM"] = platform
            return platform
        log.info("OpenGL platform %s is not usable here", platform)
    raise SimdataError("no headless OpenGL found (tried EGL and OSMesa); install Mesa with "
                       "`apt-get install libegl1 libgl1-mesa-dri libosmesa6` or run `make setup`")


# The geometry pass. gl_Position is computed exactly as in pyrender's segmentation.vert (the
# same products in the same order), so coverage and depth equal a segmentation pass's.
_GEOMETRY_VERT = """#version 330 core
layout(location = 0) in vec3 position;
layout(location = NORMAL_LOC) in vec3 normal;
layout(location = INST_M_LOC) in mat4 inst_m;
uniform mat4 M;
uniform mat4 V;
uniform mat4 P;
out vec3 n_cam;
void main() {
    mat4 light_matrix = P * V;
    gl_Position = light_matrix * M * inst_m * vec4(position, 1.0);
    n_cam = mat3(V) * mat3(M) * normal;  // rigid poses only: no inverse-transpose (no instancing)
}
"""
# The id goes to alpha as 1 - id/255 (stored exactly as 255 - id): pyrender clears segmentation
# passes to alpha 1, which then reads as id 0, nothing.
_GEOMETRY_FRAG = """#version 330 core
uniform vec3 color;
in vec3 n_cam;
out vec4 frag_color;
void main() {
    vec3 n = normalize(n_cam);
    frag_color = vec4(0.5 * n + 0.5, 1.0 - color.r);
}
"""


class _ProgramCache:
    """Shader programs of one pass, compiled once per GL context and key, deleted by clear()."""

    def __init__(self):
        self._programs = {}

    def _cached(self, key: tuple, make):
        import OpenGL.contextdata

        key = (OpenGL.contextdata.getContext(), *key)
        if key not in self._programs:
            self._programs[key] = make()
        return self._programs[key]

    def clear(self):
        for program in self._programs.values():
            program.delete()
        self._programs = {}


class _GeometryShaderCache(_ProgramCache):
    """Stands in for pyrender's shader cache during the geometry pass: our program, compiled
    with the vertex-layout defines pyrender gives each primitive. pyrender reads programs from
    files; ours are compiled from the strings above (no shader files on disk to leave behind
    when a worker process exits without cleaning up)."""

    def get_program(self, vertex_shader, fragment_shader, geometry_shader=None, defines=None):
        defines = dict(defines or {})
        return self._cached((tuple(sorted(defines.items())),), lambda: _source_program_class()(
            vertex_shader=_GEOMETRY_VERT, fragment_shader=_GEOMETRY_FRAG, defines=defines))


# pyrender's uniforms holding the number of lights of each kind, and the scene's lights they count
_LIGHT_LOOPS = {"n_directional_lights": "directional_light_nodes",
                "n_point_lights": "point_light_nodes",
                "n_spot_lights": "spot_light_nodes"}


class _FixedLightsCache(_ProgramCache):
    """Stands in for pyrender's shader cache during the colour pass: pyrender's own lit shaders
    (mesh.vert, mesh.frag), with the number of lights of each kind compiled in where pyrender
    reads it from a uniform (``n_directional_lights``...). The loops over lights then have
    constant bounds, which Mesa's llvmpipe unrolls; with a uniform bound it ran them as
    general loops, and the colour pass of a view of 6 real YCB objects took 2.3x as long.
    The images are the same to the bit (tests/test_render.py). One program per vertex layout
    and light count, compiled when first used; ``light_counts`` (uniform name -> count) is set
    for each pass. Other shaders come from pyrender's own cache ``own``."""

    def __init__(self, own):
        super().__init__()
        self.own = own
        self.light_counts = {name: 0 for name in _LIGHT_LOOPS}

    def get_program(self, vertex_shader, fragment_shader, geometry_shader=None, defines=None):
        if (vertex_shader, fragment_shader, geometry_shader) != ("mesh.vert", "mesh.frag", None):
            return self.own.get_program(vertex_shader, fragment_shader, geometry_shader, defines)
        defines, counts = dict(defines or {}), dict(self.light_counts)
        shaders = self.own.shader_dir  # pyrender's shader files
        return self._cached(
            (tuple(sorted(defines.items())), tuple(sorted(counts.items()))),
            lambda: _fixed_lights_program_class()(
                os.path.join(shaders, vertex_shader), os.path.join(shaders, fragment_shader),
                defines=defines, light_counts=counts))


def fix_light_counts(source: str, counts: dict[str, int]) -> str:
    """GLSL ``source`` of pyrender's mesh.frag with each light-count uniform replaced by its
    value in ``counts`` (uniform name -> int): declaration dropped, loop bound a constant."""
    for name, n in counts.items():
        declaration, bound = f"uniform int {name};", f"i < {name};"
        if source.count(declaration) != 1 or source.count(bound) != 1:
            raise SimdataError(f"pyrender's mesh.frag no longer loops `for (...; {bound} ...)`; "
                               f"this simdata needs the pyrender version of pyproject.toml")
        source = source.replace(declaration, "").replace(bound, f"i < {int(n)};")
    return source


@functools.lru_cache(maxsize=None)
def _fixed_lights_program_class():
    """pyrender's ShaderProgram whose mesh.frag has the light counts compiled in."""
    from pyrender.shader_program import ShaderProgram

    class FixedLightsProgram(ShaderProgram):
        def __init__(self, *args, light_counts: dict[str, int], **kwargs):
            self.light_counts = light_counts
            super().__init__(*args, **kwargs)

        def _load(self, shader_filename):
            text = super()._load(shader_filename)
            if os.path.basename(shader_filename) == "mesh.frag":
                text = fix_light_counts(text, self.light_counts)
            return text

    return FixedLightsProgram


@functools.lru_cache(maxsize=None)
def _source_program_class():
    """pyrender's ShaderProgram, fed GLSL source text instead of file names."""
    from pyrender.shader_program import ShaderProgram

    class SourceProgram(ShaderProgram):
        def _load(self, source):
            # pyrender's own substitution: each define's name becomes its value (our sources
            # hold no #ifdef)
            for name, value in self.defines.items():
                source = source.replace(name, str(value))
            return source

    return SourceProgram


def _read_framebuffer(renderer, scene, flags, colour: str, depth: bool):
    """What pyrender's Renderer._read_main_framebuffer does (for a camera with a far plane, as
    SceneRenderer's has; not on macOS, whose buffers pyrender resizes), reading only what is
    asked: ``colour`` "rgb" | "rgba" (uint8, (H,W,3|4)) and, with ``depth``, the metric
    z-depth (H,W) float32, 0 where nothing was hit (pyrender's formula, to the bit). Returns
    (colour, depth or None)."""
    from OpenGL import GL

    w, h = renderer._main_fb_dims
    GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, renderer._main_fb_ms)
    GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, renderer._main_fb)
    GL.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, GL.GL_COLOR_BUFFER_BIT, GL.GL_LINEAR)
    if depth:
        GL.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, GL.GL_DEPTH_BUFFER_BIT, GL.GL_NEAREST)
    GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, renderer._main_fb)
    channels, fmt = (4, GL.GL_RGBA) if colour == "rgba" else (3, GL.GL_RGB)
    buf = GL.glReadPixels(0, 0, w, h, fmt, GL.GL_UNSIGNED_BYTE)
    colour_im = np.flip(np.frombuffer(buf, np.uint8).reshape(h, w, channels), axis=0)
    if not depth:
        return colour_im, None
    d = np.flip(np.frombuffer(GL.glReadPixels(0, 0, w, h, GL.GL_DEPTH_COMPONENT, GL.GL_FLOAT),
                              np.float32).reshape(h, w), axis=0)
    # pyrender's d = 2 zn zf / (zf + zn - (2 d - 1) (zf - zn)) where hit, 0 elsewhere, in place
    # over every pixel (the misses' values are overwritten): the same float32 operations, as
    # a + (-b) is a - b to the bit, without four masked copies (1.8 -> 0.35 ms per view)
    miss = d == 1.0
    d = d.copy()  # d is a view of PyOpenGL's buffer, flipped
    zn, zf = scene.main_camera_node.camera.znear, scene.main_camera_node.camera.zfar
    d *= 2.0
    d -= 1.0
    d *= -(zf - zn)
    d += zf + zn
    np.divide(2.0 * zn * zf, d, out=d)
    d[miss] = 0.0
    return colour_im, d


class _UnionPass:
    """Stands in for pyrender's shader cache during the silhouette pass: its own programs,
    bound with the depth test off and the colour ORed into the framebuffer (glLogicOp, which
    takes precedence over blending for 8-bit buffers), both restored on unbind."""

    def __init__(self, cache):
        self._cache = cache

    def get_program(self, *args, **kwargs):
        return _UnionProgram(self._cache.get_program(*args, **kwargs))


class _UnionProgram:
    def __init__(self, program):
        self._program = program

    def __getattr__(self, name):
        return getattr(self._program, name)

    def _bind(self):
        from OpenGL import GL

        self._program._bind()
        GL.glDisable(GL.GL_DEPTH_TEST)
        GL.glEnable(GL.GL_COLOR_LOGIC_OP)
        GL.glLogicOp(GL.GL_OR)

    def _unbind(self):
        from OpenGL import GL

        GL.glDisable(GL.GL_COLOR_LOGIC_OP)
        GL.glEnable(GL.GL_DEPTH_TEST)
        self._program._unbind()


@functools.lru_cache(maxsize=None)
def _pyrender():
    import pyrender

    return pyrender


def _model_mesh(model: ObjectModel):
    """``pyrender.Mesh.from_trimesh(mesh, smooth=True)`` of the model's mesh wearing its
    texture: the same mesh, material and texture, with the texture formatted once (or read
    from the model's texture file, formatted at load).

    pyrender formats a texture image twice (its material's and its texture's setters), in
    five full-size copies: for a 2048x2048 image 40-330 ms per model on this project's VM,
    where freshly allocated memory is costly, every time a process (a worker, a crop job)
    first shows a textured model."""
    import trimesh
    from pyrender.constants import GLTF

    pr = _pyrender()
    mesh = model.mesh
    mat = getattr(mesh.visual, "material", None)
    uv = getattr(mesh.visual, "uv", None)
    if (getattr(mesh.visual, "kind", None) != "texture" or uv is None
            or type(mat) is not trimesh.visual.material.SimpleMaterial):
        return pr.Mesh.from_trimesh(mesh, smooth=True)
    rgba = model.texture.rgba() if model.texture is not None else rgba_of_image(mat.image)
    if rgba is None:
        return pr.Mesh.from_trimesh(mesh, smooth=True)
    texture = pr.Texture(source_channels="RGBA")
    texture._source = rgba  # already formatted: the source setter would format it again
    # what pyrender's _get_trimesh_props makes of an OBJ material
    glossiness = mat.kwargs.get("Ns", 1.0)
    if isinstance(glossiness, list):
        glossiness = float(glossiness[0])
    material = pr.MetallicRoughnessMaterial(alphaMode="BLEND",
                                            roughnessFactor=(2 / (glossiness + 2)) ** (1.0 / 4.0),
                                            baseColorFactor=mat.diffuse, baseColorTexture=texture)
    primitive = pr.Primitive(positions=mesh.vertices.copy(), normals=mesh.vertex_normals.copy(),
                             texcoord_0=uv.copy(), indices=mesh.faces.copy(), material=material,
                             mode=GLTF.TRIANGLES)
    return pr.Mesh(primitives=[primitive])


@functools.lru_cache(maxsize=None)
def _ordered_scene_class():
    """pyrender's Scene, with its mesh and light nodes iterated in the order they were added.

    pyrender keeps nodes in sets, which iterate in the order of their memory addresses: the
    lights were bound to the shader in another order in every process, and with three or more
    lights their contributions summed to a colour a level apart at a few pixels (runs with
    --randomize lights were not reproducible); mesh nodes at equal distance were drawn in
    another order too."""
    pr = _pyrender()

    class OrderedScene(pr.Scene):
        def __init__(self, *args, **kwargs):
            self._order: dict = {}  # node -> when it was added
            super().__init__(*args, **kwargs)

        def add_node(self, node, parent_node=None):
            self._order.setdefault(node, len(self._order))
            super().add_node(node, parent_node)

        @property
        def mesh_nodes(self):
            return sorted(super().mesh_nodes, key=self._order.__getitem__)

        @property
        def light_nodes(self):
            return sorted(super().light_nodes, key=self._order.__getitem__)

    return OrderedScene


def _samples_given(samples: int) -> int:
    """How many samples the current context's OpenGL gives a renderbuffer asked for
    ``samples`` (it may give more than asked: llvmpipe gives 4 for 2), the fewest over the
    colour and depth formats of pyrender's framebuffer."""
    from OpenGL import GL

    given = []
    for fmt in (GL.GL_RGBA, GL.GL_DEPTH_COMPONENT24):
        buffer = GL.glGenRenderbuffers(1)
        try:
            GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, buffer)
            GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, samples, fmt, 8, 8)
            given.append(int(GL.glGetRenderbufferParameteriv(GL.GL_RENDERBUFFER,
                                                             GL.GL_RENDERBUFFER_SAMPLES)))
        finally:
            GL.glDeleteRenderbuffers(1, [buffer])
    return min(given)


def _msaa_problem(offscreen, samples: int) -> str:
    """Why this pyrender OffscreenRenderer's OpenGL cannot render with exactly ``samples``
    antialiasing samples per pixel, or "" if it can."""
    from OpenGL import GL

    if not offscreen._platform.supports_framebuffers():
        return "" if samples == 0 else (
            f"--msaa {samples}: OSMesa renders without antialiasing; leave --msaa out, give 0, "
            f"or render with EGL")
    if samples == DEFAULT_MSAA:
        return ""
    offscreen._platform.make_current()
    most = int(GL.glGetIntegerv(GL.GL_MAX_SAMPLES))
    if samples in MSAA_CHOICES and samples <= most and _samples_given(samples) == samples:
        return ""
    ok = [n for n in MSAA_CHOICES if 0 < n <= most and _samples_given(n) == n]
    return (f"--msaa {samples}: this OpenGL takes 0 (no antialiasing) or "
            f"{', '.join(map(str, ok))} samples per pixel")


def resolve_msaa(samples: int | None) -> int:
    """The antialiasing samples per pixel a run gets: ``samples`` when this machine's OpenGL
    gives exactly that many, else SimdataError (before anything is written); None = the
    OpenGL's own: pyrender's 4 with framebuffers (EGL), 0 on OSMesa, which cannot antialias."""
    platform = choose_gl_platform()
    if samples in (None, DEFAULT_MSAA) and platform != "osmesa":
        return DEFAULT_MSAA  # EGL has framebuffers: no context needed to say so
    offscreen = _pyrender().OffscreenRenderer(8, 8)
    try:
        framebuffers = offscreen._platform.supports_framebuffers()
        problem = "" if samples is None else _msaa_problem(offscreen, samples)
    finally:
        offscreen.delete()
    if problem:
        raise SimdataError(problem)
    return samples if samples is not None else _own_msaa(framebuffers)


def _own_msaa(framebuffers: bool) -> int:
    """The antialiasing an OpenGL gives when none is asked for: pyrender's 4 where it has
    framebuffers (EGL), none on OSMesa."""
    return DEFAULT_MSAA if framebuffers else 0


def table_texture_image(table: Table, size: int = 256) -> np.ndarray:
    """(size,size,3) uint8 tile of the table's procedural texture; one tile spans tile_m metres."""
    tex = table.texture or {"kind": "plain"}
    return pattern_image(tex["kind"], table.color_rgb, tex.get("color2_rgb", table.color_rgb),
                         tex.get("seed", 0), size)


def table_mesh(table: Table):
    """Box mesh of the table, top face at z = 0, one vertex set per face (flat normals), with
    UVs in tiles of the texture (tile_m metres per tile, repeated)."""
    import trimesh
    from PIL import Image

    box = trimesh.creation.box((table.size_xy[0], table.size_xy[1], table.thickness))
    box.apply_translation([0, 0, -table.thickness / 2])
    box.unmerge_vertices()
    tile = (table.texture or {}).get("tile_m", 0.2)
    uv = np.asarray(box.vertices)[:, :2] / tile
    material = trimesh.visual.material.SimpleMaterial(image=Image.fromarray(table_texture_image(table)),
                                                      diffuse=[255, 255, 255, 255])
    box.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    return box


class SceneRenderer:
    """Renders scenes of ``models`` through one camera. Reuse it: the GL buffers and textures
    of a model are uploaded once and kept for the renderer's life (hidden in scenes without it).

    Use as a context manager (or call :meth:`close`) to free the OpenGL context.
    """

    def __init__(self, models: list[ObjectModel], intrinsics: Intrinsics, znear: float = 0.01,
                 zfar: float = 20.0, keep_models: int = 64, msaa: int | None = None):
        """``keep_models``: how many models' GL buffers stay uploaded between scenes (the
        least recently shown go first), so memory stays bounded with large model libraries.
        ``msaa``: samples per pixel of the colour pass's antialiasing (0 = none; None = the
        OpenGL's own, see resolve_msaa); refused (SimdataError) where the OpenGL cannot give
        exactly that many. On a CPU (llvmpipe) 4 samples cost about as much again as the colour
        pass without them; the other passes are never antialiased."""
        choose_gl_platform()
        pr = _pyrender()
        self.models = models
        self.intrinsics = intrinsics
        # pyrender's projection works in pixel-edge coordinates: shift by half a pixel so that
        # the written cam_K follows OpenCV's pixel-centre convention exactly.
        self._camera = pr.IntrinsicsCamera(intrinsics.fx, intrinsics.fy, intrinsics.cx + 0.5,
                                           intrinsics.cy + 0.5, znear=znear, zfar=zfar)
        try:
            self._renderer = pr.OffscreenRenderer(intrinsics.width, intrinsics.height)
        except Exception as e:
            raise SimdataError(f"cannot create an OpenGL context ({type(e).__name__}: {e}); "
                               f"check PYOPENGL_PLATFORM or run `make setup`") from None
        self._meshes: dict[int, object] = {}  # model index -> mesh, least recently shown first
        self._keep_models = keep_models
        self._geometry_cache = None
        self._colour_cache = None
        self._scene = None
        self._table_node = None
        self._object_nodes: list = []
        self._occluder_nodes: list = []
        self._clutter_nodes: list = []
        self._camera_clutter: list = []  # (node, T_cam_obj): moved with every camera pose
        self._camera_node = None
        framebuffers = self._renderer._platform.supports_framebuffers()
        self.msaa = msaa if msaa is not None else _own_msaa(framebuffers)
        problem = _msaa_problem(self._renderer, self.msaa)
        if problem:
            self.close()
            raise SimdataError(problem)
        if framebuffers and self.msaa != DEFAULT_MSAA:
            self._use_samples(self.msaa)

    def _use_samples(self, samples: int) -> None:
        """Make pyrender's multisampled framebuffer hold ``samples`` per pixel instead of 4 (a
        count _msaa_problem accepted): its renderbuffers are given new storage whenever
        pyrender (re)creates them (first pass, new image size)."""
        from OpenGL import GL

        inner = self._renderer._renderer
        configure = inner._configure_main_framebuffer
        made = {}

        def configure_with_samples():
            configure()
            key = (inner._main_cb_ms, inner._main_db_ms, tuple(inner._main_fb_dims))
            if made.get("key") != key:
                w, h = inner._main_fb_dims
                for buffer, fmt in ((inner._main_cb_ms, GL.GL_RGBA),
                                    (inner._main_db_ms, GL.GL_DEPTH_COMPONENT24)):
                    GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, buffer)
                    GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, samples, fmt, w, h)
                made["key"] = key

        inner._configure_main_framebuffer = configure_with_samples

    def set_intrinsics(self, intrinsics: Intrinsics) -> None:
        """Switch the camera to other intrinsics (same half-pixel convention as __init__), e.g.
        per crop; a new image size resizes the offscreen buffers. Keeps the GL context."""
        self._camera.fx, self._camera.fy = intrinsics.fx, intrinsics.fy
        self._camera.cx, self._camera.cy = intrinsics.cx + 0.5, intrinsics.cy + 0.5
        if (intrinsics.width, intrinsics.height) != (self.intrinsics.width, self.intrinsics.height):
            self._renderer.viewport_width = intrinsics.width
            self._renderer.viewport_height = intrinsics.height
        self.intrinsics = intrinsics

    def _mesh(self, index: int):
        if index not in self._meshes:
            self._meshes[index] = _model_mesh(self.models[index])
        return self._meshes[index]

    def set_scene(self, scene: Scene):
        """Make ``scene`` the one to render (its cameras are not used: render() takes one):
        the table (or none), the objects in their materials, the distractors that only
        occlude, the clutter (seen in ``Frame.clutter``) and the lights."""
        if len(scene.objects) > MAX_OBJECTS:
            raise SimdataError(f"a scene of {len(scene.objects)} objects: the renderer's 8-bit "
                               f"ids label at most {MAX_OBJECTS}; place fewer objects per scene")
        pr = _pyrender()
        lighting = scene.lighting
        gl_scene = _ordered_scene_class()(ambient_light=np.asarray(lighting.ambient),
                                          bg_color=[0.0, 0.0, 0.0, 1.0])
        table = scene.table
        self._table_node = (gl_scene.add(pr.Mesh.from_trimesh(table_mesh(table), smooth=False))
                            if table is not None else None)
        placed = scene.objects
        materials = scene.materials or [{"kind": "keep"}] * len(placed)
        self._object_nodes = [gl_scene.add(self._instance_mesh(p.model_index, m),
                                           pose=p.T_world_obj) for p, m in zip(placed, materials)]
        self._keep_uploaded(gl_scene, {p.model_index for p, m in zip(placed, materials)
                                       if m.get("kind", "keep") == "keep"})
        self._occluder_nodes = [gl_scene.add(pr.Mesh.from_trimesh(model.mesh, smooth=False), pose=T)
                                for model, T in scene.distractors]
        self._clutter_nodes, self._camera_clutter = [], []
        for model, T, frame in scene.clutter:
            node = gl_scene.add(pr.Mesh.from_trimesh(model.mesh, smooth=False), pose=T)
            self._clutter_nodes.append(node)
            if frame == "camera":
                self._camera_clutter.append((node, T))
        colors = lighting.colors or [np.ones(3)] * len(lighting.directions)
        for direction, intensity, color in zip(lighting.directions, lighting.intensities, colors):
            sun = pr.DirectionalLight(color=np.asarray(color, float), intensity=float(intensity))
            gl_scene.add(sun, pose=_light_pose(np.asarray(direction, float)))
        for light in lighting.points:
            pose = np.eye(4)
            pose[:3, 3] = light["position"]
            gl_scene.add(pr.PointLight(color=np.asarray(light["color"]),
                                       intensity=light["intensity"]), pose=pose)
        self._camera_node = gl_scene.add(self._camera, pose=np.eye(4))
        self._scene = gl_scene

    def _keep_uploaded(self, scene, shown: set[int]) -> None:
        """Keep every model mesh this renderer has uploaded in ``scene``, drawn only if shown.

        pyrender frees the GL buffers and textures of meshes that leave the scene, so a model
        absent from one scene (every other crop) was uploaded again when it came back: 0.2 s
        for a 2048x2048 texture. An invisible mesh stays on the GPU and is skipped by every pass.
        """
        for index in shown:  # most recently shown last
            self._meshes[index] = self._meshes.pop(index)
        for index in list(self._meshes)[:max(0, len(self._meshes) - self._keep_models)]:
            if index not in shown:
                del self._meshes[index]  # left out of the scene: pyrender frees its buffers
        for index, mesh in self._meshes.items():
            mesh.is_visible = index in shown
            if index not in shown:
                scene.add(mesh)

    def _instance_mesh(self, index: int, material: dict):
        """The model's own mesh, or a copy wearing a randomized material."""
        if material.get("kind", "keep") == "keep":
            return self._mesh(index)
        import trimesh

        pr = _pyrender()
        src = self.models[index].mesh
        mesh = trimesh.Trimesh(src.vertices, src.faces, vertex_normals=src.vertex_normals, process=False)
        uv = getattr(src.visual, "uv", None)
        pbr = dict(metallicFactor=material["metallic"], roughnessFactor=material["roughness"])
        kind = material["kind"]
        if kind == "color":
            mat = pr.MetallicRoughnessMaterial(baseColorFactor=[*material["color"], 1.0], **pbr)
        elif uv is not None:  # a 2D texture through the model's own UVs
            if kind == "image":
                from .fileio import read_image
                import cv2

                img = cv2.resize(read_image(material["image"], cv2.IMREAD_COLOR), (256, 256),
                                 interpolation=cv2.INTER_AREA)
            else:
                img = pattern_image(kind, material["color"], material["color2"], material["seed"])
            mesh.visual = trimesh.visual.TextureVisuals(uv=uv)
            mat = pr.MetallicRoughnessMaterial(
                baseColorTexture=pr.Texture(source=img, source_channels="RGB"), **pbr)
        else:  # no UVs: the pattern lives in 3D, on the vertices
            kind = kind if kind != "image" else "noise"
            mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=vertex_pattern(
                mesh.vertices, kind, material["color"], material["color2"], material["period_m"],
                material["seed"]))
            mat = pr.MetallicRoughnessMaterial(baseColorFactor=[1.0, 1.0, 1.0, 1.0], **pbr)
        return pr.Mesh.from_trimesh(mesh, material=mat, smooth=True)

    def render_rgb(self, T_world_cam: np.ndarray) -> np.ndarray:
        """Only the lit colour pass (H,W,3) uint8: the image pyrender's own shaders draw."""
        if self._scene is None:
            raise RuntimeError("set_scene() first")
        self._scene.set_pose(self._camera_node, opencv_to_opengl_camera(T_world_cam))
        for node, T_cam_obj in self._camera_clutter:
            self._scene.set_pose(node, T_world_cam @ T_cam_obj)
        from pyrender.constants import MAX_N_LIGHTS

        if self._colour_cache is None:
            self._colour_cache = _FixedLightsCache(self._renderer._renderer._program_cache)
        # what pyrender's _bind_lighting binds: at most MAX_N_LIGHTS of each kind
        self._colour_cache.light_counts = {
            name: min(len(getattr(self._scene, nodes)), MAX_N_LIGHTS)
            for name, nodes in _LIGHT_LOOPS.items()}
        with self._programs(lambda own: self._colour_cache), self._reading("rgb"):
            return self._renderer.render(self._scene, flags=_pyrender().RenderFlags.NONE)[0]

    def render(self, T_world_cam: np.ndarray, normals: bool = True) -> Frame:
        """Render the current scene from an OpenCV camera pose T_world_cam (4,4), metres."""
        pr = _pyrender()
        rgb = self.render_rgb(T_world_cam)
        seg_flags = pr.RenderFlags.SEG
        # Instance i is drawn with id i+1. SEG passes skip unmapped nodes, so the table and the
        # distractors get the reserved id 255: they must still occlude objects. Clutter: 254.
        seg_map = {node: _id_color(i + 1) for i, node in enumerate(self._object_nodes)}
        for node in [self._table_node, *self._occluder_nodes]:
            if node is not None:
                seg_map[node] = _id_color(255)
        for node in self._clutter_nodes:
            seg_map[node] = _id_color(CLUTTER_ID)
        ids, depth, normal_img = self._render_geometry(seg_flags, seg_map, normals)
        n = len(self._object_nodes)
        # one broadcast comparison (N,H,W): 0.1 ms, where stacking N comparisons took 1.4
        masks_visib = ids[None] == np.arange(1, n + 1, dtype=ids.dtype)[:, None, None]
        if len(seg_map) == 1:  # one object and nothing else: its silhouette is what is visible
            masks = masks_visib.copy()
        else:
            masks = self._render_silhouettes(seg_flags)
        return Frame(rgb=np.ascontiguousarray(rgb), depth_m=np.ascontiguousarray(depth),
                     masks=masks, masks_visib=masks_visib, normals=normal_img,
                     T_world_cam=T_world_cam.copy(),
                     clutter=(ids == CLUTTER_ID) if self._clutter_nodes else None)

    def _render_geometry(self, seg_flags, seg_map, normals: bool):
        """The geometry pass: ids (H,W) uint8 (0 = nothing), metric z-depth (H,W) float32 and,
        with ``normals``, camera-frame (OpenCV axes) unit normals (H,W,3) float32 (0 where
        nothing was hit), else None.

        Depth comes from this pass, drawn with multisampling off, not from the colour pass,
        whose resolved depth is one of its samples, up to 3/8 pixel off the pixel centre.
        Without framebuffers (OSMesa draws into its window buffer, which keeps no alpha) the
        ids and depth come from a segmentation pass and the normals from a second pass."""
        if self._geometry_cache is None:
            self._geometry_cache = _GeometryShaderCache()
        render = functools.partial(self._renderer.render, self._scene, flags=seg_flags,
                                   seg_node_map=seg_map)
        if not self._renderer._platform.supports_framebuffers():
            ids, depth = render()
            if normals:
                with self._programs(lambda own: self._geometry_cache):
                    normals_rgb = render()[0]
            return ids[..., 0], depth, _decode_normals(normals_rgb) if normals else None
        with self._programs(lambda own: self._geometry_cache), self._reading("rgba", depth=True):
            img, depth = render()
        return 255 - img[..., 3], depth, _decode_normals(img) if normals else None

    @contextlib.contextmanager
    def _reading(self, colour: str, depth: bool = False):
        """Passes inside the block read back only ``colour`` ("rgb" | "rgba") and, with
        ``depth``, the depth buffer (see _read_framebuffer); pyrender always reads both.
        Without framebuffers (OSMesa) pyrender reads its window buffer as it does."""
        if not self._renderer._platform.supports_framebuffers():
            yield
            return
        inner = self._renderer._renderer
        saved = inner.__dict__.get("_read_main_framebuffer")  # an enclosing block's reader
        inner._read_main_framebuffer = functools.partial(_read_framebuffer, inner, colour=colour,
                                                         depth=depth)
        try:
            yield
        finally:
            if saved is None:
                del inner._read_main_framebuffer  # the class's own again
            else:
                inner._read_main_framebuffer = saved

    def _render_silhouettes(self, seg_flags) -> np.ndarray:
        """(N,H,W) bool full silhouettes of the N objects, 24 per pass: object k of a pass
        draws bit k of the RGB pixel, ORed into the framebuffer with the depth test off.

        Coverage does not depend on the depth test, and the pass runs pyrender's own
        segmentation shaders, so each bit equals what a pass of that object alone draws
        (the same vertex code as the visible-mask pass: a silhouette never misses one of its
        visible pixels), for one pass instead of one per object.
        """
        n = len(self._object_nodes)
        h, w = self.intrinsics.height, self.intrinsics.width
        masks = np.zeros((n, h, w), bool)
        with self._programs(_UnionPass), self._reading("rgb"):
            for start in range(0, n, 24):
                group = self._object_nodes[start:start + 24]
                bits = {}
                for k, node in enumerate(group):
                    color = np.zeros(3)
                    color[k // 8] = 1 << (k % 8)
                    bits[node] = color
                img = self._renderer.render(self._scene, flags=seg_flags, seg_node_map=bits)[0]
                for k in range(len(group)):
                    masks[start + k] = (img[..., k // 8] >> (k % 8)) & 1 == 1
        return masks

    @contextlib.contextmanager
    def _programs(self, make_cache):
        """Passes inside the block take their shader programs from ``make_cache(pyrender's own
        cache)``: pyrender has no public hook for custom shaders or GL state per pass."""
        inner = self._renderer._renderer
        saved = inner._program_cache
        inner._program_cache = make_cache(saved)
        try:
            yield
        finally:
            inner._program_cache = saved

    def close(self):
        for cache in (self._geometry_cache, self._colour_cache):
            if cache is not None:
                cache.clear()
        self._geometry_cache = self._colour_cache = None
        if self._renderer is not None:
            self._renderer.delete()
            self._renderer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


CLUTTER_ID = 254
MAX_OBJECTS = CLUTTER_ID - 1  # ids 1..253; 254 is clutter, 255 the table and distractors


# The decoded value of each byte, and its square: decoding by table lookup gives the same
# float32 numbers as the arithmetic. _NORMAL_BYTE_CV holds each channel's value in OpenCV camera
# axes (y and z negated; (-a)/b is -(a/b) to the bit), for cv2.LUT, which looks up all three
# channels of a pixel in one pass.
_NORMAL_BYTE = np.arange(256, dtype=np.float32) / np.float32(127.5) - np.float32(1.0)
_NORMAL_BYTE_SQ = _NORMAL_BYTE * _NORMAL_BYTE
_NORMAL_BYTE_CV = np.stack([_NORMAL_BYTE, -_NORMAL_BYTE, -_NORMAL_BYTE], -1).reshape(1, 256, 3)


def _decode_normals(img: np.ndarray) -> np.ndarray:
    """Camera-frame unit normals (H,W,3) float32, OpenCV axes, 0 where nothing was drawn, from
    the geometry pass's colour (H,W,3) or (H,W,4) uint8 (0.5 n + 0.5 in OpenGL camera axes;
    a fourth channel is ignored).

    Each pixel is (x, y, z) / max(sqrt(x^2 + y^2 + z^2), 1e-6) of its decoded bytes in float32,
    summed in that order (tests check all 2^24 byte triples against that arithmetic). With
    OpenCV on one thread, as in a pool worker, a 640x480 view of real YCB takes 6.9 ms on the
    development machine, where numpy's per-channel lookups took 9.7."""
    import cv2

    rgb = cv2.cvtColor(img, cv2.COLOR_RGBA2RGB) if img.shape[-1] == 4 else np.ascontiguousarray(img)
    sq = cv2.LUT(rgb, _NORMAL_BYTE_SQ)
    norm = sq[..., 0] + sq[..., 1]
    norm += sq[..., 2]
    np.sqrt(norm, out=norm)
    np.maximum(norm, np.float32(1e-6), out=norm)
    norm[(rgb[..., 0] | rgb[..., 1] | rgb[..., 2]) == 0] = np.inf  # nothing drawn: x / inf = 0
    n_cv = cv2.LUT(rgb, _NORMAL_BYTE_CV)
    n_cv /= norm[..., None]
    # -0.0 (a negative x over inf) becomes 0.0; any other value is unchanged, as no decoded
    # byte is 0 (127.5 is no byte)
    n_cv += np.float32(0.0)
    return n_cv


def _id_color(i: int) -> np.ndarray:
    return np.array([i, 0, 0], np.float64)


def _light_pose(direction: np.ndarray) -> np.ndarray:
    """Pose of a directional light shining along ``direction`` (world frame; light looks down -z)."""
    z = -direction / np.linalg.norm(direction)
    x = np.cross([0.0, 1.0, 0.0] if abs(z[1]) < 0.9 else [1.0, 0.0, 0.0], z)
    x /= np.linalg.norm(x)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    return pose
