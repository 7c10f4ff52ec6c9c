"""ROS bags as RGB-D frames: ROS 1 and ROS 2 (sqlite3, mcap) bags written here with rosbags,
read back through simdata.bags (encodings, compression, topic choice, pairing, errors)."""
import logging
import shutil

import cv2
import numpy as np
import pytest

pytest.importorskip("rosbags", reason="the ros extra (pip install '.[ros]') is not installed")

from helpers import rgbd_frames, write_test_bag  # noqa: E402
from simdata.bag_writer import BagWriter  # noqa: E402
from simdata.bags import BagFrames, BagTopics, bag_topics, is_bag, iter_bag_frames  # noqa: E402
from simdata.errors import SimdataError  # noqa: E402

ROUND_TRIPS = [  # version, storage, colour encoding, depth encoding, compressed, depth error bound (m)
    (1, "mcap", "rgb8", "16UC1", False, 0.0005),     # millimetres: half a mm of rounding
    (2, "sqlite3", "bgr8", "32FC1", False, 0.0),     # metres as they are
    (2, "mcap", "rgba8", "16UC1", True, 0.0005),     # png + compressedDepth png
    (1, "mcap", "bgr8", "32FC1", True, 0.0003),      # compressedDepth's inverse-depth quantisation
    (2, "mcap", "mono8", "16UC1", False, 0.0005),
]


@pytest.mark.parametrize("version,storage,colour,depth,compressed,depth_err", ROUND_TRIPS)
def test_frames_come_back_as_written(tmp_path, version, storage, colour, depth, compressed, depth_err):
    frames = rgbd_frames(4)
    path = write_test_bag(tmp_path / ("cam.bag" if version == 1 else "cam"), frames, version=version,
                          storage=storage, colour_encoding=colour, depth_encoding=depth, compressed=compressed,
                          depth_delay_ns=3_000_000)
    assert is_bag(path) and not is_bag(tmp_path / "nothing.bag")
    suffix = "/compressed" if compressed else ""
    assert bag_topics(path)["/camera/color/image_raw" + suffix] == (
        "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image")
    got = list(iter_bag_frames(path))
    assert len(got) == 4
    for want, f in zip(frames, got):
        rgb = want.rgb if colour != "mono8" else cv2.cvtColor(cv2.cvtColor(want.rgb, cv2.COLOR_RGB2GRAY),
                                                               cv2.COLOR_GRAY2RGB)
        assert f.rgb.dtype == np.uint8 and np.array_equal(f.rgb, rgb)
        assert f.depth_m.dtype == np.float32 and f.depth_m.shape == (48, 64)
        assert np.abs(f.depth_m - want.depth_m).max() <= depth_err + 1e-6  # metres, not millimetres
        assert (f.depth_m[:12, :16] == 0).all() and (f.depth_m[12:] > 0.4).all()  # holes stay holes
        assert f.stamp_ns == want.stamp_ns and f.frame_id == want.frame_id
        assert np.array_equal(f.K, want.K)
    indexed = BagFrames(path)
    assert len(indexed) == 4 and indexed.stamps_ns == [f.stamp_ns for f in frames]
    assert np.array_equal(indexed[2].rgb, got[2].rgb) and np.array_equal(indexed[2].depth_m, got[2].depth_m)
    if version == 2:  # one storage file on its own, without metadata.yaml
        storage_file = next(p for p in path.iterdir() if p.suffix in (".mcap", ".db3"))
        bare = shutil.copy(storage_file, tmp_path / storage_file.name)
        assert [f.stamp_ns for f in iter_bag_frames(bare)] == [f.stamp_ns for f in frames]


def _realsense_like_bag(path):
    """A bag as a RealSense records it: infrared (mono8), colour raw and as JPEG, depth in the
    depth camera's own 32x24 grid and aligned to the 64x48 colour, a CameraInfo for each."""
    frames = rgbd_frames(3)
    small_K = frames[0].K / 2
    small_K[2, 2] = 1
    with BagWriter(path, version=2, storage="mcap") as w:
        for f in frames:
            t, c = f.stamp_ns, "camera_color_optical_frame"
            w.image("/camera/infra1/image_rect_raw", t, "camera_infra1_optical_frame", f.rgb[..., 0], "mono8")
            w.image("/camera/color/image_raw", t, c, f.rgb, "rgb8")
            w.image("/camera/color/image_raw/compressed", t, c, f.rgb, "rgb8", compressed="jpeg")
            w.image("/camera/depth/image_rect_raw", t, "camera_depth_optical_frame", f.depth_m[::2, ::2], "16UC1")
            w.image("/camera/aligned_depth_to_color/image_raw", t + 1_000_000, c, f.depth_m, "16UC1")
            w.camera_info("/camera/depth/camera_info", t, "camera_depth_optical_frame", small_K, (32, 24))
            w.camera_info("/camera/color/camera_info", t, c, f.K, (64, 48))
    return frames


def test_topics_are_found_from_the_message_types(tmp_path):
    path = tmp_path / "realsense"
    frames = _realsense_like_bag(path)
    assert len(bag_topics(path)) == 7
    found = BagFrames(path)
    assert (found.plan.colour.topic, found.plan.depth.topic, found.plan.info) == (
        "/camera/color/image_raw", "/camera/aligned_depth_to_color/image_raw", "/camera/color/camera_info")
    f = found[1]
    assert np.array_equal(f.rgb, frames[1].rgb) and np.array_equal(f.K, frames[1].K)
    assert np.abs(f.depth_m - frames[1].depth_m).max() < 0.001
    jpeg = list(iter_bag_frames(path, BagTopics(colour="/camera/color/image_raw/compressed", depth="none")))
    assert len(jpeg) == 3 and jpeg[0].depth_m is None and np.array_equal(jpeg[0].K, frames[0].K)
    assert np.abs(jpeg[0].rgb.astype(int) - frames[0].rgb).mean() < 8  # JPEG: close, in RGB order
    with pytest.raises(SimdataError, match=r"is 32x24 but colour on /camera/color/image_raw is 64x48.*"
                                           r"--depth-topic"):
        BagFrames(path, BagTopics(depth="/camera/depth/image_rect_raw"))
    with pytest.raises(SimdataError, match="CameraInfo on /camera/depth/camera_info is for 32x24"):
        BagFrames(path, BagTopics(camera_info="/camera/depth/camera_info"))
    depth_only = list(iter_bag_frames(path, BagTopics(colour="none", depth="/camera/depth/image_rect_raw")))
    assert depth_only[0].rgb is None and depth_only[0].depth_m.shape == (24, 32)
    assert depth_only[0].K[0, 0] == 32  # the depth camera's own CameraInfo


def test_colour_and_depth_pair_by_header_stamp(tmp_path, caplog):
    frames = rgbd_frames(6)
    frames[3].depth_m = None  # the depth of one frame was dropped
    frames[4].K = frames[4].K * [[2], [2], [1]]  # the camera was recalibrated: K from then on
    frames[5].K = None
    path = write_test_bag(tmp_path / "a.bag", frames, version=1, depth_delay_ns=8_000_000)
    with caplog.at_level(logging.WARNING, logger="simdata.bags"):
        got = list(iter_bag_frames(path))
    assert [f.stamp_ns for f in got] == [f.stamp_ns for i, f in enumerate(frames) if i != 3]
    assert "1 of 6 colour images" in caplog.text
    assert np.allclose(got[-1].depth_m, frames[5].depth_m, atol=0.0005)
    assert got[-1].K[0, 0] == 128 and got[-2].K[0, 0] == 128 and got[0].K[0, 0] == 64  # the latest K
    assert [f.stamp_ns for f in iter_bag_frames(path, every=2)] == [got[i].stamp_ns for i in (0, 2, 4)]

    late = write_test_bag(tmp_path / "late.bag", rgbd_frames(3, period_ns=100_000_000), version=1,
                          depth_delay_ns=50_000_000)  # 10 Hz, depth stamped 50 ms after colour
    with pytest.raises(SimdataError, match=r"no depth on /camera/aligned_depth_to_color/image_raw within "
                                           r"0.02 s .*--tolerance-s"):
        list(iter_bag_frames(late))
    assert len(BagFrames(late, BagTopics(tolerance_s=0.06))) == 3
    assert [f.depth_m for f in iter_bag_frames(late, BagTopics(depth="none"))] == [None] * 3


def test_bad_bags_get_one_line_errors(tmp_path):
    def error(path, topics=BagTopics()) -> str:
        with pytest.raises(SimdataError) as e:
            list(iter_bag_frames(path, topics))
        assert "\n" not in str(e.value)
        return str(e.value)

    K = np.eye(3)
    with BagWriter(tmp_path / "info_only", version=2, storage="sqlite3") as w:
        w.camera_info("/camera/color/camera_info", 1, "cam", K, (4, 3))
    assert "has no sensor_msgs/Image or CompressedImage topic" in error(tmp_path / "info_only")
    with BagWriter(tmp_path / "yuv.bag", version=1) as w:
        w.image("/camera/image_raw", 1, "cam", np.zeros((3, 8), np.uint8), "yuv422")
    msg = error(tmp_path / "yuv.bag")
    assert "/camera/image_raw" in msg and "'yuv422'" in msg and "rgb8" in msg
    path = write_test_bag(tmp_path / "ok", rgbd_frames(2))
    msg = error(path, BagTopics(colour="/camera/rgb"))
    assert "--colour-topic /camera/rgb" in msg and "/camera/color/image_raw (Image)" in msg
    msg = error(path, BagTopics(colour="/camera/aligned_depth_to_color/image_raw"))
    assert "encoding '16UC1', which simdata cannot read as colour" in msg and "--colour-topic" in msg
    broken = tmp_path / "broken.bag"
    data = write_test_bag(tmp_path / "whole.bag", rgbd_frames(2), version=1).read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    assert "cannot read the bag" in error(broken) and "reindex" in error(broken)
    assert "is no ROS bag" in error(tmp_path / "notes.txt")
    with pytest.raises(SimdataError, match="--every 0"):
        BagFrames(path, every=0)
    with pytest.raises(SimdataError, match="exists"):
        write_test_bag(path, rgbd_frames(1))


def test_one_stream_takes_the_camera_info_recorded_after_its_image(tmp_path):
    frames = rgbd_frames(5)
    for f in frames[3:]:  # recalibrated at frame 3: its CameraInfo is recorded after its image
        f.K = f.K * [[2], [2], [1]]
    path = write_test_bag(tmp_path / "cam", frames)
    for topics in (BagTopics(depth="none"), BagTopics(colour="none")):
        got = [f.K[0, 0] for f in iter_bag_frames(path, topics)]
        assert got == [64, 64, 64, 128, 128]
        assert [BagFrames(path, topics).K(i)[0, 0] for i in range(5)] == got


def test_planning_stops_at_the_first_messages_despite_an_empty_topic(tmp_path, monkeypatch):
    from simdata import bags
    from simdata.bags import IMAGE

    path = tmp_path / "cam"
    frames = rgbd_frames(20)
    with BagWriter(path) as w:  # a topic listed but never published (e.g. a camera that failed)
        w._conns["/camera/infra1/image_raw"] = w._writer.add_connection("/camera/infra1/image_raw", IMAGE,
                                                                         typestore=w._types)
        for f in frames:
            w.image("/camera/color/image_raw", f.stamp_ns, f.frame_id, f.rgb, "rgb8")
            w.image("/camera/aligned_depth_to_color/image_raw", f.stamp_ns, f.frame_id, f.depth_m, "16UC1")
            w.camera_info("/camera/color/camera_info", f.stamp_ns, f.frame_id, f.K, (64, 48))
    assert "/camera/infra1/image_raw" in bag_topics(path)
    read = []
    messages = bags._Bag.messages

    def counted(self, topics, *a, **kw):
        for item in messages(self, topics, *a, **kw):
            read.append(item[0])
            yield item

    monkeypatch.setattr(bags._Bag, "messages", counted)
    with bags._Bag(path) as bag:
        plan = bags._plan(bag, BagTopics())
    assert len(read) == 3 and plan.colour.topic == "/camera/color/image_raw"  # one message per topic
    assert len(list(iter_bag_frames(path))) == 20


def test_writing_a_bag_where_it_cannot_be_written_fails_in_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    for path, version in ((tmp_path / "notes.txt" / "cam", 2), (tmp_path / "notes.txt" / "a" / "cam.bag", 1)):
        with pytest.raises(SimdataError, match=f"cannot write {path}") as e:
            write_test_bag(path, rgbd_frames(1), version=version)
        assert "\n" not in str(e.value)
    path = tmp_path / "gone" / "cam"
    with pytest.raises(SimdataError, match=f"cannot write {path}"):
        with BagWriter(path) as w:  # its folder removed while recording: the rename fails
            w.image("/camera/color/image_raw", 1, "cam", np.zeros((3, 4, 3), np.uint8), "rgb8")
            tmp = next((tmp_path / "gone").iterdir())
            tmp.rename(tmp_path / "elsewhere")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "gone", "notes.txt"]
    assert not list((tmp_path / "gone").iterdir())  # no temporary left
