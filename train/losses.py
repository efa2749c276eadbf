"""Training losses of the teacher and the students: the task losses
(cross-entropy, CenterNet's focal loss and L1 terms, per-pixel cross-entropy),
distillation from the teacher's outputs, and the relative feature MSE."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def focal_loss(logits, gt):
    """CenterNet's penalty-reduced focal loss on heatmap logits."""
    logp = F.logsigmoid(logits)
    log1mp = F.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    pos = gt.eq(1).float()
    neg = 1.0 - pos
    pos_loss = (logp * (1 - p) ** 2 * pos).sum()
    neg_loss = (log1mp * p ** 2 * (1 - gt) ** 4 * neg).sum()
    npos = pos.sum().clamp(min=1.0)
    return -(pos_loss + neg_loss) / npos


def task_loss(out, masks, labels, targets):
    hm, sz, off, ind = targets
    n = ind.sum().clamp(min=1.0)
    l_cls = F.cross_entropy(out["logits"], labels)
    l_hm = focal_loss(out["heatmap"], hm)
    l_sz = (torch.abs(out["size"] - sz) * ind[:, None]).sum() / n
    l_off = (torch.abs(out["offset"] - off) * ind[:, None]).sum() / n
    l_seg = F.cross_entropy(out["mask_logits"], masks)
    total = l_cls + l_hm + 0.1 * l_sz + l_off + l_seg
    return total, {"cls": l_cls.item(), "hm": l_hm.item(), "sz": l_sz.item(), "off": l_off.item(),
                   "seg": l_seg.item()}


def kd_loss(out, tout, T=2.0):
    """Knowledge distillation from the teacher's outputs."""
    l_cls = F.kl_div(F.log_softmax(out["logits"] / T, 1), F.softmax(tout["logits"] / T, 1),
                     reduction="batchmean") * T * T
    l_seg = F.kl_div(F.log_softmax(out["mask_logits"], 1), F.softmax(tout["mask_logits"], 1),
                     reduction="none").sum(1).mean()
    l_hm = F.mse_loss(torch.sigmoid(out["heatmap"]), torch.sigmoid(tout["heatmap"])) * 100.0
    l_box = F.l1_loss(out["size"], tout["size"]) * 0.1 + F.l1_loss(out["offset"], tout["offset"])
    return l_cls + l_seg + l_hm + l_box


def relative_mse(student, teacher):
    """MSE of student features against the teacher's, relative to the teacher's mean square:
    1 for a student that outputs zeros."""
    return F.mse_loss(student, teacher) / teacher.pow(2).mean()
