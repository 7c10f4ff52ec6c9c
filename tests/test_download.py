"""The YCB downloader against a local file:// mirror (tests never touch the network)."""
import tarfile

import pytest
import trimesh

from simdata.assets import discover_models
from simdata.download import download_ycb, ycb_archive_url
from simdata.errors import SimdataError


def make_mirror(root, obj="003_cracker_box"):
    src = root / "src" / obj / "google_16k"
    src.mkdir(parents=True)
    trimesh.creation.box((0.06, 0.158, 0.21)).export(src / "textured.obj")
    (root / "google").mkdir()
    with tarfile.open(root / "google" / f"{obj}_google_16k.tgz", "w:gz") as tar:
        tar.add(root / "src" / obj, arcname=obj)
    return f"file://{root}"


def test_urls_follow_the_bucket_layout():
    assert ycb_archive_url("http://x/data/", "011_banana") == "http://x/data/google/011_banana_google_16k.tgz"
    assert ycb_archive_url("http://x/data", "011_banana", "berkeley_processed") == \
        "http://x/data/berkeley/011_banana_berkeley_processed.tgz"


def test_download_unpacks_to_the_layout_render_reads_and_resumes(tmp_path):
    base = make_mirror(tmp_path / "mirror")
    dest = tmp_path / "ycb"
    (folder,) = download_ycb(dest, ["003_cracker_box"], base_url=base, progress=False)
    assert (folder / "google_16k" / "textured.obj").is_file()
    (src,) = discover_models(dest)
    assert src.name == "003_cracker_box"
    assert not [p for p in dest.iterdir() if p.name.startswith(".tmp")]
    # rerun: nothing is fetched again, even with the mirror gone
    (tmp_path / "mirror" / "google" / "003_cracker_box_google_16k.tgz").unlink()
    assert download_ycb(dest, ["003_cracker_box"], base_url=base, progress=False) == [folder]


def test_missing_object_and_corrupt_archive_give_clear_errors(tmp_path):
    base = make_mirror(tmp_path / "mirror")
    with pytest.raises(SimdataError, match="cannot download .*999_nothing"):
        download_ycb(tmp_path / "ycb", ["999_nothing"], base_url=base, progress=False)
    (tmp_path / "mirror" / "google" / "011_banana_google_16k.tgz").write_bytes(b"not a tarball")
    with pytest.raises(SimdataError, match="corrupt"):
        download_ycb(tmp_path / "ycb", ["011_banana"], base_url=base, progress=False)
    assert not (tmp_path / "ycb" / "011_banana").exists()
