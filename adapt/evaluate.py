"""Task metrics on labelled target crops: classification accuracy and pose angle error."""
from __future__ import annotations

import torch

from .data import Domain
from .losses import quaternion_angle_deg


@torch.no_grad()
def evaluate_domain(task_net, domain: Domain, device, batch: int = 256) -> dict:
    """Accuracy, mean/median rotation error (degrees, all samples and correctly classified
    ones) and per-class accuracy of ``task_net`` on a labelled Domain."""
    was = task_net.training
    task_net.eval()
    correct, angles, labels = [], [], []
    for start in range(0, len(domain), batch):
        b = domain.items(range(start, min(start + batch, len(domain))))
        logits, q = task_net(b["x"].to(device))
        correct.append((logits.argmax(1).cpu() == b["label"]))
        angles.append(quaternion_angle_deg(q.cpu(), b["quat"]))
        labels.append(b["label"])
    task_net.train(was)
    correct, angles, labels = torch.cat(correct), torch.cat(angles), torch.cat(labels)
    names = domain.info.names
    return {
        "samples": len(correct), "accuracy": round(correct.float().mean().item(), 4),
        "mean_angle_deg": round(angles.mean().item(), 2),
        "median_angle_deg": round(angles.median().item(), 2),
        "mean_angle_deg_correct": round(angles[correct].mean().item(), 2) if correct.any() else None,
        "per_class_accuracy": {names[c]: round(correct[labels == c].float().mean().item(), 4)
                               for c in labels.unique().tolist()},
    }
