"""The pose task: which object is in a crop, and its full 6D pose in the camera frame.

Data: crops folders (simdata crops / render --mode crops; see simdata.crops), labelled with
class, rotation, translation (metres) and the crop's intrinsics K; ``models_info.json`` gives
the objects' diameters and symmetries (BOP convention) and ``model_points.npz`` their surface
points. Net: adapt.nets.PoseNet (class, per-class rotation and translation code). Loss:

    CE(logits, class) + w * [rot_weight * L_rot(R, R_true; symmetries) + trans_weight * L1(code)]

with L_rot zero at every symmetric equivalent of the truth (``--rot-loss symmetric``: min over
the symmetry set of ||R - R_true S||_F^2; ``points``: the point-matching loss, closest-point
form for continuous symmetries; ``quat``: PixelDA's log(eps + 1 - |q.q_hat|), no symmetries).
Metrics: accuracy, symmetry-aware rotation error, translation error, ADD(-S) recall at 10 % of
the diameter (BOP conventions), and PixelDA's own angle 2 acos|q.q_hat| (no symmetries).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from simdata.errors import SimdataError

from ..losses import point_matching_loss, quaternion_loss, symmetric_rotation_loss
from ..rotations import matrix_to_quat_wxyz, quat_wxyz_to_matrix
from ..translation import DEPTH_UNIT_M, decode_translation, encode_translation
from .base import DataSpec, Task, bag_topics

ROT_LOSSES = ("symmetric", "points", "quat")


@dataclass
class PoseConfig:
    rotation: str = field(default="6d", metadata={"help": "rotation output: 6d (continuous, Zhou et al. 2019) or quat (PixelDA)"})
    rot_loss: str = field(default="symmetric", metadata={"help": "rotation loss: symmetric (min over object symmetries), points (point matching, ADD-S form for continuous symmetries) or quat (PixelDA, no symmetries)"})
    rot_weight: float = field(default=1.0, metadata={"help": "weight of the rotation loss inside the pose loss"})
    trans_weight: float = field(default=1.0, metadata={"help": "weight of the translation loss inside the pose loss"})
    sym_step_deg: float = field(default=10.0, metadata={"help": "sampling step of continuous symmetries (degrees)"})


def symmetry_table(models_info: dict, obj_ids: list[int], step_deg: float):
    """Per class (obj_ids order): padded symmetry rotations (C,S,3,3), translations (C,S,3) m,
    valid (C,S) and continuous (C,) bool, from BOP models_info entries (missing = none)."""
    from simdata.symmetry import symmetry_transforms

    from ..pose_metrics import pad_symmetries

    per_class = [symmetry_transforms(models_info.get(str(i), {}), step_deg) for i in obj_ids]
    sym_R, sym_t, valid = pad_symmetries(per_class)
    continuous = torch.tensor([bool(models_info.get(str(i), {}).get("symmetries_continuous"))
                               for i in obj_ids])
    return sym_R, sym_t, valid, continuous


class PoseTask(Task):
    name = "pose"
    Config = PoseConfig
    data_kind = "a crops folder (simdata crops / render --mode crops)"

    def __init__(self, cfg: PoseConfig | None = None):
        super().__init__(cfg)
        if self.cfg.rot_loss not in ROT_LOSSES:
            raise SimdataError(f"--rot-loss {self.cfg.rot_loss!r}: use one of {', '.join(ROT_LOSSES)}")
        if self.cfg.rotation not in ("6d", "quat"):
            raise SimdataError(f"--rotation {self.cfg.rotation!r}: use 6d or quat")
        if not 0 < self.cfg.sym_step_deg <= 90:
            raise SimdataError(f"--sym-step-deg {self.cfg.sym_step_deg} must be in (0, 90]")
        self._tables: dict = {}

    # -- data ------------------------------------------------------------------------------
    def open_domain(self, train_cfg, path, stream: int):
        from ..data import Domain

        return Domain(path, train_cfg.size, train_cfg.channels, stream=stream, seed=train_cfg.seed,
                      topics=bag_topics(train_cfg))

    def data_spec(self, train_cfg, labelled_domains: list) -> DataSpec:
        from ..data import CHANNELS

        if train_cfg.channels not in CHANNELS:
            raise SimdataError(f"--channels {train_cfg.channels!r}: use {', '.join(CHANNELS)}")
        from simdata.crops import crop_pad_of

        first = labelled_domains[0]
        # how the training crops were cut, so that the runtime cuts a frame's crops alike:
        # background black, scene or randomized; pad None = uniform poses (sphere framing)
        extras = {"obj_ids": first.obj_ids, "models_info": first.models_info,
                  "crop_background": first.ds.info.get("background"),
                  "crop_pad": crop_pad_of(first.ds.info)}
        if self.cfg.rot_loss == "points" and not first.has_points:
            raise SimdataError(f"{first.path} has no model_points.npz; --rot-loss points needs "
                               f"crops made by this version of simdata")
        return DataSpec(CHANNELS[train_cfg.channels], train_cfg.size, list(first.names), extras)

    def _table(self, data: DataSpec, device, models_info: dict | None = None):
        """Symmetry tensors of the run's objects (or of ``models_info``, an evaluated folder's),
        built once per device: the loss asks for them every step."""
        info = models_info if models_info is not None else data.extras.get("models_info", {})
        key = ("run" if models_info is None else json.dumps(info, sort_keys=True), str(device))
        if key not in self._tables:
            tab = symmetry_table(info, data.extras["obj_ids"], self.cfg.sym_step_deg)
            self._tables[key] = tuple(t.to(device) for t in tab)
        return self._tables[key]

    # -- net and loss ------------------------------------------------------------------------
    def build_net(self, data: DataSpec, width: int, net: str | None = None):
        from ..nets import build

        return build(net or "pose-net", channels=data.channels, size=data.size,
                     classes=len(data.classes), width=width, rotation=self.cfg.rotation)

    def loss(self, net, batch, data, weight=1.0):
        cfg, x, label = self.cfg, batch["x"], batch["label"]
        logits, R_all, code_all = net.heads(x)
        idx = torch.arange(len(x), device=x.device)
        R, code = R_all[idx, label], code_all[idx, label]
        R_true = quat_wxyz_to_matrix(batch["quat"])
        sym_R, _, valid, continuous = self._table(data, x.device)
        if cfg.rot_loss == "symmetric":
            l_rot = symmetric_rotation_loss(R, R_true, sym_R[label], valid[label])
        elif cfg.rot_loss == "points":
            pts = batch["points"]  # (B,N,3) metres, scaled to the object's size
            scale = pts.norm(dim=2).amax(1).clamp_min(1e-6)[:, None, None]
            l_rot = point_matching_loss(R, R_true, pts / scale, sym_R[label], valid[label],
                                        continuous[label])
        else:
            l_rot = quaternion_loss(matrix_to_quat_wxyz(R), batch["quat"])
        l_t = F.smooth_l1_loss(code, encode_translation(batch["t"], batch["K"], data.size), beta=0.05)
        ce = F.cross_entropy(logits, label)
        loss = ce + weight * (cfg.rot_weight * l_rot + cfg.trans_weight * l_t)
        acc = (logits.argmax(1) == label).float().mean()
        return loss, {"ce": ce.detach(), "pose": l_rot.detach(), "trans": l_t.detach(), "acc": acc.detach()}

    # -- evaluation ----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, net, domain, data, device, batch: int = 256) -> dict:
        """Pose metrics over every crop of a labelled domain (see the module docstring).
        Symmetries and model points come from the evaluated folder when it has them, else
        from the run."""
        from ..pose_metrics import (add_or_adds, pixelda_angle_deg, pose_summary,
                                    symmetric_rotation_error_deg)

        info = domain.models_info or data.extras.get("models_info", {})
        obj_ids = data.extras["obj_ids"]
        sym_R, _, valid, continuous = self._table(data, "cpu", info)
        symmetric = valid.sum(1) > 1
        points = domain.points_table(obj_ids)  # (C,N,3) metres or None
        diam = torch.tensor([info.get(str(i), {}).get("diameter", float("nan")) / 1000.0
                             for i in obj_ids])
        was = net.training
        net.eval()
        rows = {k: [] for k in ("rot", "pixelda", "trans", "add", "diam", "correct", "label")}
        for start in range(0, len(domain), batch):
            b = domain.items(range(start, min(start + batch, len(domain))))
            logits, R, code = (t.cpu() for t in net(b["x"].to(device)))
            lab = b["label"]
            R_true = quat_wxyz_to_matrix(b["quat"])
            t_pred = decode_translation(code, b["K"], data.size)
            rows["rot"].append(symmetric_rotation_error_deg(R, R_true, sym_R[lab], valid[lab]))
            rows["pixelda"].append(pixelda_angle_deg(matrix_to_quat_wxyz(R), b["quat"]))
            rows["trans"].append((t_pred - b["t"]).norm(dim=1))
            if points is not None:
                rows["add"].append(add_or_adds(R, t_pred, R_true, b["t"], points[lab], symmetric[lab]))
            rows["diam"].append(diam[lab])
            rows["correct"].append(logits.argmax(1) == lab)
            rows["label"].append(lab)
        net.train(was)
        r = {k: torch.cat(v) if v else None for k, v in rows.items()}
        res = {"samples": len(r["label"]), **pose_summary(
            rot_err_deg=r["rot"], pixelda_angle_deg=r["pixelda"], trans_err_m=r["trans"],
            add_s_err_m=r["add"], diameters_m=r["diam"], correct=r["correct"])}
        names = data.classes
        res["per_class"] = {names[c]: {
            "accuracy": round(r["correct"][r["label"] == c].float().mean().item(), 4),
            "median_rot_err_deg": round(r["rot"][r["label"] == c].median().item(), 2),
            "symmetric": bool(symmetric[c])} for c in r["label"].unique().tolist()}
        return res

    def summary(self, res: dict) -> str:
        line = (f"accuracy {res['accuracy']:.3f}, rotation error mean {res['mean_rot_err_deg']:.1f} / "
                f"median {res['median_rot_err_deg']:.1f} deg (symmetry-aware; PixelDA angle "
                f"{res['pixelda_angle_mean_deg']:.1f}), translation error median "
                f"{res['median_trans_err_mm']:.0f} mm")
        if res.get("add_s_recall_10") is not None:
            line += f", ADD(-S) recall {res['add_s_recall_10']:.3f}"
        return line

    # -- export and prediction ------------------------------------------------------------------
    def export_io(self, net, data, conf) -> dict:
        from simdata.crops import CROP_PAD

        from ..data import input_description

        # runs from before crop_pad was recorded were trained on CROP_PAD crops
        pad = data.extras.get("crop_pad", CROP_PAD)
        framing = (f"square of {pad:g}x the object's box, centred on it, " if pad is not None else
                   "uniform poses: the object's bounding sphere spans a fixed share of the square "
                   "(simdata.crop_render.FILL; no box reproduces it, adapt.runtime refuses the net), ")
        return {"inputs": net.example_inputs(2), "input_names": ["image"],
                "output_names": ["logits", "rotation", "translation_code"],
                "dynamic_axes": {n: {0: "batch"} for n in ("image", "logits", "rotation", "translation_code")},
                "metadata": {
                    "task": self.name,
                    "input": {"shape": ["batch", data.channels, data.size, data.size],
                              "size": data.size, "channels": conf["data"]["channels"], "range": [-1, 1],
                              "normalisation": input_description(conf["data"]["channels"]),
                              "crop": framing + "resized to the input size (colour: area, "
                                                "depth: nearest); K_crop = simdata.crops.crop_intrinsics"},
                    "crop": {"pad": pad, "background": data.extras.get("crop_background")},
                    "classes": data.classes, "obj_ids": data.extras.get("obj_ids"),
                    "models_info": data.extras.get("models_info"),
                    "outputs": {
                        "logits": "(batch, classes) class scores, softmax for probabilities",
                        "rotation": "(batch, 3, 3) rotation model -> camera (OpenCV axes) for "
                                    "the predicted class; symmetric objects: any equivalent",
                        "translation_code": "(batch, 3) dx, dy, zeta: with the crop's K, "
                                            "z = zeta * depth_unit_m * fx / size, u = c + dx * size, "
                                            "v = c + dy * size with c = (size - 1) / 2 the crop's "
                                            "centre, t = z * K^-1 (u, v, 1) in metres",
                    },
                    "depth_unit_m": DEPTH_UNIT_M}}

    def predict(self, method, conf, folder, out) -> int:
        from ..predict import predict_pose_crops

        return predict_pose_crops(method, conf, folder, out)
