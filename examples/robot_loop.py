"""Bag in, runtime, predictions out: the loop a robot runs, on numpy, OpenCV, onnxruntime and
rosbags alone (no torch).

    python examples/robot_loop.py recording.mcap --boxes seg.onnx --pose pose.onnx --out poses.mcap
    python examples/robot_loop.py recording.mcap --grasp grasp.onnx --out grasps.mcap

Every frame of the bag (colour, registered depth and K, paired by header stamp) goes through
the segmenter, whose object instances are the pose estimator's boxes, and/or the grasp planner;
the predictions go into a new MCAP file as ROS 2 messages stamped with the frame's header (open
it beside the recording in Foxglove). In a live ROS node the loop's body is the image callback.
"""
import argparse

from adapt.ros import PredictionWriter
from adapt.runtime import GraspPlanner, PoseEstimator, Segmenter
from simdata.bags import iter_bag_frames


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bag", help="ROS 1 .bag, ROS 2 folder, .db3 or .mcap: colour, depth, CameraInfo")
    p.add_argument("--boxes", help="segmentation net (.onnx): its object instances are the boxes")
    p.add_argument("--pose", help="pose net (.onnx); needs --boxes")
    p.add_argument("--grasp", help="grasp net (.onnx)")
    p.add_argument("--out", required=True, help="new .mcap file for the predictions")
    args = p.parse_args(argv)
    if args.pose and not args.boxes:
        p.error("--pose needs --boxes: a pose net estimates poses in boxes it is given")
    segment = Segmenter(args.boxes) if args.boxes else None
    estimate = PoseEstimator(args.pose) if args.pose else None
    plan = GraspPlanner(args.grasp) if args.grasp else None
    with PredictionWriter(args.out) as out:
        for frame in iter_bag_frames(args.bag):
            stamp, frame_id = frame.stamp_ns, frame.frame_id
            if segment:
                seg = segment(frame.rgb, frame.depth_m)
                out.segmentation(stamp, frame_id, seg)
            if estimate:
                poses = estimate(frame.rgb, frame.depth_m, frame.K, [i.box_xywh for i in seg.instances],
                                 [i.mask for i in seg.instances])
                out.poses(stamp, frame_id, poses, estimate.model_box)
                for pose in poses:
                    print(f"{stamp}: {pose.class_name} ({pose.score:.2f}) at {pose.t_m.round(3)} m")
            if plan:
                grasps = plan(frame.depth_m, frame.K, frame.rgb)
                out.grasps(stamp, frame_id, grasps)
                if grasps:
                    g = grasps[0]
                    print(f"{stamp}: grasp at {g.position_m.round(3)} m, open {g.opening_m:.3f} m, "
                          f"quality {g.quality:.2f}")
    print(f"wrote {args.out}: " + ", ".join(f"{t} {n}" for t, n in out.counts.items()))


if __name__ == "__main__":
    main()
