"""The grasp task: parallel-jaw grasps as GG-CNN maps (quality, angle, width per pixel) on depth.

Data: simdata BOP datasets labelled by `simdata grasps` (maps per image; see
simdata.grasping.labels), image folders with depth (unlabelled target, prediction). Net:
GG-CNN2 (adapt.nets, ``ggcnn2``) on ``--channels`` height (default: height above the table
plane, invariant to where the camera is), depth, rgbd or rgbh. Loss: GG-CNN2's smooth-L1 on the
four maps. Metrics (adapt.grasping): the rectangle metric on held-out labelled views and
closed-loop simulated grasp success with a random and a centroid baseline.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from simdata.errors import SimdataError

from .base import DataSpec, Task, bag_topics, dense_export_io


@dataclass
class GraspConfig:
    sim_trials: int = field(default=200, metadata={"help": "grasp eval: closed-loop grasps simulated in pybullet (images of the eval set, evenly spread; 0 = none), for the net and both baselines"})


class GraspTask(Task):
    name = "grasp"
    Config = GraspConfig
    data_kind = "a simdata BOP dataset labelled by `simdata grasps`"

    def open_domain(self, train_cfg, path, stream: int):
        from ..grasping import GraspDomain

        return GraspDomain(path, train_cfg.height, train_cfg.crop, stream=stream, seed=train_cfg.seed,
                           channels=train_cfg.channels, topics=bag_topics(train_cfg))

    def data_spec(self, train_cfg, labelled_domains: list) -> DataSpec:
        from dataclasses import asdict

        from ..data import CHANNELS
        from ..grasping import depth_check_of, gripper_of

        if train_cfg.crop % 8 or train_cfg.crop < 16:
            raise SimdataError(f"--crop {train_cfg.crop} must be a multiple of 8, at least 16")
        if train_cfg.channels not in CHANNELS or train_cfg.channels == "rgb":
            raise SimdataError(f"--channels {train_cfg.channels!r}: a grasp net takes height, depth, "
                               f"rgbh or rgbd")
        # the gripper and depth check of the labels: predict turns the net's grasps into poses
        root = labelled_domains[0].path
        return DataSpec(CHANNELS[train_cfg.channels], train_cfg.crop, list(labelled_domains[0].names),
                        extras={"gripper": asdict(gripper_of(root)),
                                "depth_check": asdict(depth_check_of(root))})

    def build_net(self, data: DataSpec, width: int, net: str | None = None):
        from ..nets import build

        return build(net or "ggcnn2", channels=data.channels, width=width)

    def loss(self, net, batch, data, weight=1.0):
        from ..grasping import grasp_loss

        return grasp_loss(net(batch["x"]), batch["grasp"])

    def predict_images(self, net, x):
        """The quality map as a grey picture (white = a good grasp centre)."""
        return (net(x)[:, :1].clamp(0, 1) * 2 - 1).expand(-1, 3, -1, -1)

    def evaluate(self, net, domain, data, device) -> dict:
        from ..grasping import evaluate_grasping

        import sys

        return evaluate_grasping(net, domain, device, trials=self.cfg.sim_trials, seed=0,
                                 progress=sys.stderr.isatty())

    def summary(self, res: dict) -> str:
        acc = res.get("rectangle_accuracy")
        out = [f"rectangle accuracy {acc:.3f} on {res['rectangle_views']} views" if acc is not None
               else "no labelled views"]
        for name, r in res.get("simulated", {}).items():
            lo, hi = r["ci95"]
            out.append(f"{name} {100 * r['success_rate']:.1f}% [{100 * lo:.0f}-{100 * hi:.0f}] of "
                       f"{r['trials']} simulated grasps")
        held = res.get("per_object", {}).get("net")
        if held:  # which objects the net's grasps closed on, and how often they held
            out.append("net held by object: " + ", ".join(f"{name or 'none'} {k}/{n}"
                                                           for name, (n, k) in held.items()))
        ends = res.get("simulated", {}).get("net", {}).get("outcomes")
        if ends:  # how the net's trials ended: what to work on next
            out.append("net trials: " + ", ".join(f"{k} {n}" for k, n in ends.items()))
        return "; ".join(out)

    def eval_figures(self, net, domain, data, device, result, out) -> int:
        from ..predict import grasp_figures

        return grasp_figures(domain, result, out)

    def export_io(self, net, data, conf) -> dict:
        from ..grasp_decode import ANGLE_SIGMA, QUALITY_SIGMA, WIDTH_SCALE_PX, WIDTH_SIGMA

        return dense_export_io(
            self.name, net, data, conf, "grasp_maps",
            "(batch, 4, height, width): quality (about 0..1), cos 2a, sin 2a (a: the closing axis' "
            f"angle in the image from +u towards +v), width of the opening in px / {WIDTH_SCALE_PX:g}; "
            "raw, as GG-CNN2",
            decoding="smooth quality (Gaussian sigma 2 px), cos and sin (2 px), width (1 px); grasps "
                     "at local maxima of quality; a = atan2(sin, cos) / 2; approach along the optical "
                     "axis, depth from the depth-image check (simdata.grasping.depth_check)",
            width_scale_px=WIDTH_SCALE_PX,
            smoothing_sigma_px={"quality": QUALITY_SIGMA, "angle": ANGLE_SIGMA, "width": WIDTH_SIGMA},
            gripper=data.extras.get("gripper"), depth_check=data.extras.get("depth_check"))

    def predict(self, method, conf, folder, out) -> int:
        from ..predict import predict_grasp_folder

        return predict_grasp_folder(method, conf, folder, out)
