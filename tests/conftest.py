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
