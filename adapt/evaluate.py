"""Task metrics on labelled target data: the task's own metrics (adapt.tasks), the
segmentation metrics they use (IoU, mIoU) and negative transfer against a baseline."""
from __future__ import annotations

import torch


@torch.no_grad()
def segment_domain(task_net, domain, device):
    """Yield (index, x, labels, prediction) for every image of a labelled SceneDomain: the
    whole image resized to the domain's height, its width cut to a multiple of 8 about the
    centre; the net in eval mode meanwhile."""
    was = task_net.training
    task_net.eval()
    try:
        for i in range(len(domain)):
            s = domain.sample(i, None)
            w = s["x"].shape[-1] // 8 * 8
            x0 = (s["x"].shape[-1] - w) // 2
            x, y = s["x"][..., x0:x0 + w], s["label"][..., x0:x0 + w]
            yield i, x, y, task_net(x[None].to(device)).argmax(1)[0].cpu()
    finally:
        task_net.train(was)


def evaluate_segmentation(task_net, domain, device) -> dict:
    """Per-class IoU, mIoU and pixel accuracy of ``task_net`` over a labelled SceneDomain,
    on whole images (see :func:`segment_domain`), plus each image's IoU (mean over the
    classes present in its ground truth or prediction) and the pixel confusion matrix (rows:
    truth), from which evaluations of parts of a test set pool into the whole's IoU."""
    from .scenes import IGNORE

    k = len(domain.names)
    conf = torch.zeros(k, k, dtype=torch.int64)
    per_image = []
    for _, _, y, pred in segment_domain(task_net, domain, device):
        valid = y != IGNORE
        c = torch.bincount(y[valid] * k + pred[valid], minlength=k * k).view(k, k)
        conf += c
        per_image.append(_iou(c).nanmean().item())
    scores = scores_from_confusion(conf, domain.names)
    return {"images": len(domain), "miou": scores["miou"],
            "pixel_accuracy": round((conf.diag().sum() / conf.sum().clamp_min(1)).item(), 4),
            "per_class_iou": scores["per_class_iou"],
            "per_image_iou": [round(v, 4) for v in per_image],
            "confusion": conf.tolist()}  # pixels, rows: truth, columns: prediction


def scores_from_confusion(confusion, names: list[str]) -> dict:
    """mIoU and per-class IoU of a pixel confusion matrix (rows: truth), e.g. the sum of the
    ``confusion`` of evaluations of disjoint parts of one test set: the whole set's figures."""
    iou = _iou(torch.as_tensor(confusion, dtype=torch.int64))
    return {"miou": round(iou.nanmean().item(), 4),
            "per_class_iou": {n: (None if torch.isnan(v) else round(v.item(), 4)) for n, v in zip(names, iou)}}


def _iou(conf: torch.Tensor) -> torch.Tensor:
    """IoU per class from a confusion matrix (rows: truth); NaN for classes never seen."""
    tp = conf.diag().float()
    union = conf.sum(0).float() + conf.sum(1).float() - tp
    return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))


def negative_transfer(per_image: list[float], baseline_per_image: list[float]) -> float:
    """Share of images whose IoU is below the baseline's on the same image (SPIGAN, Table 2)."""
    if len(per_image) != len(baseline_per_image) or not per_image:
        raise ValueError("negative transfer needs per-image IoUs of the same images")
    return round(sum(a < b for a, b in zip(per_image, baseline_per_image)) / len(per_image), 4)


def evaluate(method, domain) -> dict:
    """The metrics of the method's task on a labelled domain."""
    return method.task.evaluate(method.task_net, domain, method.data, method.device)
