import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "assets" / "ycb"
SHARED = REPO.parent / "shared"


def pytest_configure(config):
    # VHACD results go to a per-run cache, never the user's ~/.cache.
    os.environ.setdefault("SIMDATA_CACHE", str(Path(config.rootpath) / ".pytest_cache" / "simdata"))


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    return ASSETS


@pytest.fixture(scope="session")
def shared_ycb() -> Path:
    path = SHARED / "ycb"
    if not path.is_dir():
        pytest.skip(f"{path} is absent (real YCB meshes live in ../shared on dev machines and CI)")
    return path


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """2 scenes x 2 views at 320x240 from the bundled assets, all modalities."""
    from helpers import small_config
    from simdata.pipeline import render_dataset

    out = tmp_path_factory.mktemp("small") / "ds"
    render_dataset(small_config(out), progress=False)
    return out


@pytest.fixture(scope="session")
def grasp_dataset(tmp_path_factory) -> Path:
    """2 scenes x 2 views at 320x240 seen from above, primesense depth, labelled by
    `simdata grasps` with a few candidates per object."""
    from helpers import small_config
    from simdata.grasping.labels import GraspLabelConfig, label_dataset
    from simdata.pipeline import render_dataset
    from simdata.sampling import SceneConfig
    from simdata.types import PRIMESENSE

    out = tmp_path_factory.mktemp("grasp") / "ds"
    cfg = small_config(out, sensor="primesense")
    cfg.scene = SceneConfig(views=2, objects=(3, 4), distance=(0.45, 0.6), elevation_deg=(75.0, 90.0),
                            intrinsics=PRIMESENSE.resized(320, 240))
    render_dataset(cfg, progress=False)
    label_dataset(out, GraspLabelConfig(candidates=6), progress=False)
    return out
