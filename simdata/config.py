"""RenderConfig: everything that decides the content of a rendered dataset."""
from __future__ import annotations

from dataclasses import dataclass, field

from .assets import MAX_TEXTURE_PX, check_max_texture
from .errors import SimdataError
from .randomize import RandomizationConfig
from .sampling import SceneConfig
from .sensors import SensorModel, get_sensor

EXTRAS = ("normals", "depth_m")


@dataclass
class RenderConfig:
    """Everything that decides the content of a dataset (plus where and how fast to make it)."""

    meshes: str = "assets/ycb"
    out: str = "data/syn"
    scenes: int = 20
    seed: int = 0
    units: str = "auto"
    max_texture: int = MAX_TEXTURE_PX  # largest texture side kept, px (0 = as stored)
    rgb_format: str = "jpg"          # bop_toolkit reads train_pbr RGB as .jpg
    depth_scale: float = 0.1         # depth PNG unit in mm (0.1 mm, as BOP's PBR data)
    extras: tuple[str, ...] = EXTRAS
    workers: int = 1
    max_attempts: int = 5            # re-drops when every object of a scene fell off
    sensor: str = "clean"            # sensor model preset (simdata.sensors.SENSOR_PRESETS)
    symmetries: str = ""             # JSON of symmetry overrides (simdata.symmetry); "" = detect
    formats: tuple[str, ...] = ("bop",)  # output formats (simdata.writers.FORMATS)
    # antialiasing samples per pixel of the RGB; 0 = none; None = the OpenGL's own (4 with EGL,
    # 0 on OSMesa); a run records the count it rendered with (render.resolve_msaa)
    msaa: int | None = None
    ray: str = ""                    # "" = this machine; "auto" or a cluster address: Ray tasks
    scene: SceneConfig = field(default_factory=SceneConfig)
    randomize: RandomizationConfig = field(default_factory=RandomizationConfig)

    def validate(self) -> "RenderConfig":
        if self.scenes < 1:
            raise SimdataError(f"--scenes {self.scenes} must be at least 1")
        check_max_texture(self.max_texture)
        if self.workers < 1:
            raise SimdataError(f"--workers {self.workers} must be at least 1")
        if self.rgb_format not in ("jpg", "png"):
            raise SimdataError(f"--rgb-format {self.rgb_format!r}: use jpg or png")
        if not 0 < self.depth_scale <= 10:
            raise SimdataError(f"--depth-scale {self.depth_scale} must be in (0, 10] mm per unit")
        if self.msaa not in (None, 0, 2, 4, 8, 16):
            raise SimdataError(f"--msaa {self.msaa}: use 0 (no antialiasing), 2, 4, 8 or 16 "
                               f"samples per pixel")
        bad = set(self.extras) - set(EXTRAS)
        if bad:
            raise SimdataError(f"unknown --extras {sorted(bad)}; choose from {', '.join(EXTRAS)}")
        self._validate_formats()
        get_sensor(self.sensor)
        if self.symmetries:
            from .symmetry import load_symmetry_overrides

            load_symmetry_overrides(self.symmetries)  # raises SimdataError naming the file
        self.scene.validate()
        self.randomize.validate()
        return self

    def _validate_formats(self) -> None:
        from .writers import FORMATS

        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise SimdataError(f"unknown --format {','.join(bad) or '(empty)'}; write a comma "
                               f"list of {', '.join(FORMATS)} (e.g. bop,coco)")
        for f in self.formats:
            missing = [n for n in FORMATS[f].needs if n not in self.formats]
            if missing:
                raise SimdataError(f"--format {f} needs {','.join(missing)} beside it (it "
                                   f"annotates its images); use --format {','.join(missing)},{f}")

    @property
    def sensor_model(self) -> SensorModel:
        return get_sensor(self.sensor)
