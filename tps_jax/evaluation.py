"""Classification metrics of a video evaluation, on the host in NumPy.

The device side (:func:`tps_jax.train.eval_step`) averages the softmax scores of the
test views (clips x crops) of each video, as the official test protocol does; this module
turns those per-video scores into top-1, top-5, mean class accuracy and a confusion
matrix, and writes them out.
"""
import csv
import json
import os
from typing import Dict, Optional, Sequence

import numpy as np


class Accumulator:
  """Sums over evaluation batches; padding examples (``mask`` False) are ignored.

  Args:
    num_classes: size of the label space.
    keep_predictions: also keep every video's averaged logits and scores (for
      :meth:`predictions`), e.g. to compare a converted checkpoint with PyTorch.
  """

  def __init__(self, num_classes: int, keep_predictions: bool = False):
    self.num_classes = num_classes
    self.confusion = np.zeros((num_classes, num_classes), np.int64)  # [true, predicted]
    self.top5_correct = 0
    self.nll_sum = 0.0
    self.keep_predictions = keep_predictions
    self._logits, self._probs, self._labels = [], [], []

  def update(self, probs: np.ndarray, labels: np.ndarray, mask: np.ndarray,
             logits: Optional[np.ndarray] = None) -> None:
    """Adds a batch: ``probs`` (B, K) view-averaged softmax, ``labels`` (B,), ``mask`` (B,)."""
    mask = np.asarray(mask, bool)
    probs, labels = np.asarray(probs, np.float64)[mask], np.asarray(labels)[mask]
    if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
      raise ValueError(f'evaluation label {labels.max()} outside [0, {self.num_classes})')
    np.add.at(self.confusion, (labels, probs.argmax(-1)), 1)
    k = min(5, self.num_classes)
    topk = np.argsort(-probs, axis=-1, kind='stable')[:, :k]
    self.top5_correct += int((topk == labels[:, None]).any(-1).sum())
    self.nll_sum += float(-np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-12)).sum())
    if self.keep_predictions:
      self._probs.append(probs.astype(np.float32))
      self._labels.append(labels)
      if logits is not None:
        self._logits.append(np.asarray(logits, np.float32)[mask])

  @property
  def count(self) -> int:
    return int(self.confusion.sum())

  def result(self) -> Dict[str, float]:
    """``top1``, ``top5``, ``mean_class_accuracy`` (over classes present), ``loss``, ``count``."""
    n = max(self.count, 1)
    per_class = self.per_class_accuracy()
    present = self.confusion.sum(1) > 0
    return {
        'top1': float(np.trace(self.confusion) / n),
        'top5': float(self.top5_correct / n),
        'mean_class_accuracy': float(per_class[present].mean()) if present.any() else 0.0,
        'loss': float(self.nll_sum / n),
        'count': self.count,
    }

  def per_class_accuracy(self) -> np.ndarray:
    """Recall of each class (NaN-free: 0 for classes without examples)."""
    totals = self.confusion.sum(1)
    return np.diag(self.confusion) / np.maximum(totals, 1)

  def predictions(self) -> Dict[str, np.ndarray]:
    """Every kept video's ``probs``, ``labels`` (and ``logits``), in evaluation order."""
    out = {'probs': np.concatenate(self._probs), 'labels': np.concatenate(self._labels)}
    if self._logits:
      out['logits'] = np.concatenate(self._logits)
    return out


def write_confusion(path: str, confusion: np.ndarray, class_names: Sequence[str]) -> None:
  """CSV: one row per true class (name, count, accuracy, then counts per predicted class)."""
  with open(path, 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['true \\ predicted', 'count', 'accuracy'] + list(class_names))
    for i, name in enumerate(class_names):
      total = int(confusion[i].sum())
      w.writerow([name, total, f'{confusion[i, i] / max(total, 1):.4f}']
                 + [int(v) for v in confusion[i]])


def write_report(workdir: str, split: str, acc: Accumulator, class_names: Sequence[str],
                 step: int, extra: Optional[Dict] = None) -> Dict:
  """Writes ``eval_<split>.json`` (metrics + per-class accuracy) and ``confusion_<split>.csv``."""
  metrics = acc.result()
  per_class = acc.per_class_accuracy()
  report = dict(split=split, step=int(step), **metrics,
                per_class_accuracy={n: float(a) for n, a in zip(class_names, per_class)},
                **(extra or {}))
  with open(os.path.join(workdir, f'eval_{split}.json'), 'w') as f:
    json.dump(report, f, indent=1)
  write_confusion(os.path.join(workdir, f'confusion_{split}.csv'), acc.confusion, class_names)
  if acc.keep_predictions:
    np.savez(os.path.join(workdir, f'predictions_{split}.npz'), **acc.predictions())
  return report
