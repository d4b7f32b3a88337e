"""Evaluation: the protocols' views, a split's pass, and its metrics on the host in NumPy.

The device side (:func:`tps_jax.steps.eval_step`) averages the softmax scores of the views
(clips x crops) of each video, as the official test protocol does; this module says which
views a protocol takes (:func:`protocol_views`), runs a split (:func:`evaluate_split`),
turns the per-video scores into the metrics of :data:`METRICS` and a confusion matrix, and
writes them out. The run passes the metrics on by these names, untouched.
"""
import csv
import io
import json
import math
import time
from typing import Dict, Optional, Sequence, Tuple

from absl import logging
import numpy as np

import input_pipeline
from tps_jax import sharding
from tps_jax import workdir as wd

# What :meth:`Accumulator.result` reports besides ``count``, and whether more is better (the
# choices of ``config.eval.best_metric``).
METRICS = {'top1': 'max', 'top5': 'max', 'mean_class_accuracy': 'max', 'loss': 'min'}
PROTOCOLS = ('test', 'validation')


def protocol_views(config, protocol: str) -> Tuple[int, int]:
  """``(clips, crops)`` per video: 'test' is the paper's protocol (``config.input.test_num_*``),
  run at the end and by ``--mode=evaluate``; 'validation' the cheap one during training
  (``config.eval.val_num_*``: as the official ``evaluation = dict(interval=5)``)."""
  if protocol == 'test':
    return config.input.test_num_clips, config.input.test_num_crops
  if protocol == 'validation':
    return config.eval.val_num_clips, config.eval.val_num_crops
  raise ValueError(f'evaluation protocol {protocol!r} is not one of {list(PROTOCOLS)}')


def split_name(config, split: str) -> str:
  """A role of ``config.dataset.splits`` ('train', 'eval', 'test') or a literal split name."""
  return config.dataset.splits[split] if split in config.dataset.splits else split


def evaluate_split(p_eval, state, config, mesh, info, split: str, *, protocol: str = 'test',
                   keep_predictions: bool = False) -> 'Accumulator':
  """Runs ``p_eval`` over a whole split with ``protocol``'s views (this process's part,
  padded batches masked)."""
  pi, pc = sharding.process_split()
  acc = Accumulator(info.num_classes, keep_predictions)
  progress = _Progress(split, math.ceil(info.num_examples.get(split, 0) /
                                        config.eval_batch_size))
  for batch in input_pipeline.create_eval_iterator(config, split, process_index=pi,
                                                   process_count=pc, info=info,
                                                   views=protocol_views(config, protocol)):
    progress.update()
    ids = batch.pop('id')  # strings stay on the host
    out = sharding.global_to_host(p_eval(state, sharding.host_to_global(batch, mesh)))
    if keep_predictions and pc > 1:  # the global batch's ids, in the order of `out`
      ids = decode_ids(sharding.global_to_host(sharding.host_to_global(encode_ids(ids), mesh)))
    acc.update(out['probs'], out['label'], out['mask'], out['logits'], ids=ids)
  return acc


PROGRESS_SECONDS = 10.0  # an evaluation logs where it is this often (minutes on CPU)


class _Progress:
  """Logs ``batch i/n`` and the time left every :data:`PROGRESS_SECONDS`."""

  def __init__(self, split: str, total: int):
    self.split, self.total, self.done = split, total, 0
    self.start = self.last = time.monotonic()

  def update(self) -> None:
    """Called before each batch: the time of the batches done so far gives the ETA."""
    now = time.monotonic()
    if self.done and now - self.last >= PROGRESS_SECONDS:
      self.last = now
      eta = (now - self.start) / self.done * max(self.total - self.done, 0)
      logging.info('evaluating %s: batch %d/%d, %.1f s/batch, ETA %.0f s', self.split,
                   self.done + 1, self.total, (now - self.start) / self.done, eta)
    self.done += 1


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
    self._logits, self._probs, self._labels, self._ids = [], [], [], []

  def update(self, probs: np.ndarray, labels: np.ndarray, mask: np.ndarray,
             logits: Optional[np.ndarray] = None, ids: Optional[np.ndarray] = None) -> None:
    """Adds a batch: ``probs`` (B, K) view-averaged softmax, ``labels`` (B,), ``mask`` (B,).

    ``ids`` (B,): the videos' ids (bytes or str), kept with the predictions.
    """
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
      if ids is not None:
        self._ids.extend(i.decode() if isinstance(i, bytes) else str(i)
                         for i in np.asarray(ids, object)[mask])

  @property
  def count(self) -> int:
    return int(self.confusion.sum())

  def result(self) -> Dict[str, float]:
    """:data:`METRICS` (mean class accuracy over the classes present) and ``count``."""
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

  def absent_classes(self) -> np.ndarray:
    """Indices of the classes without any evaluated example (no accuracy to report)."""
    return np.flatnonzero(self.confusion.sum(1) == 0)

  def predictions(self) -> Dict[str, np.ndarray]:
    """Every kept video's ``probs``, ``labels`` (``logits``, ``ids``), in evaluation order."""
    out = {'probs': np.concatenate(self._probs), 'labels': np.concatenate(self._labels)}
    if self._logits:
      out['logits'] = np.concatenate(self._logits)
    if self._ids:
      out['ids'] = np.array(self._ids, dtype=str)
    return out


# Video ids cross processes as fixed-width bytes (ids are at most this long in UTF-8).
_ID_BYTES = 256


def reversal_pair_scores(confusion: np.ndarray) -> Dict[str, float]:
  """Scores of a label space made of time-reversal pairs (2k, 2k+1), e.g. ``reversal_pairs``.

  Returns:
    ``pair``: the share of clips predicted inside their true pair, all that a
    frame-order-blind model can get right; ``direction``: of those, the share predicted
    with the right direction of time. A frame-order-blind model sees the same frames in a
    clip and in its reversal, so its ``direction`` is 0.5 in expectation.
  """
  pair = np.arange(len(confusion)) // 2
  in_pair = confusion[pair[:, None] == pair[None, :]].sum()
  return dict(pair=float(in_pair / max(confusion.sum(), 1)),
              direction=float(np.trace(confusion) / max(in_pair, 1)))


def prediction_margin(values: Sequence[float], confidence: float = 0.99) -> float:
  """Half-width of the one-sided prediction interval for one more draw, from ``values``.

  A result measured over n seeds predicts where the next run (another seed, or the same
  seed on another machine, whose float rounding acts like one) lands: above
  ``mean - t(confidence, n-1) * std * sqrt(1 + 1/n)`` with probability ``confidence``
  (Student t, normal draws, sample std).
  """
  from scipy import stats  # pylint: disable=g-import-not-at-top
  v = np.asarray(values, float)
  n = len(v)
  return float(stats.t.ppf(confidence, n - 1) * v.std(ddof=1) * np.sqrt(1 + 1 / n))


def encode_ids(ids) -> np.ndarray:
  """(B,) ids (bytes or str) -> (B, 256) uint8, zero-padded; longer ids are refused."""
  out = np.zeros((len(ids), _ID_BYTES), np.uint8)
  for row, i in zip(out, ids):
    data = i if isinstance(i, bytes) else str(i).encode()
    if len(data) > _ID_BYTES:
      raise ValueError(f'video id longer than {_ID_BYTES} bytes: {data[:60]!r}...')
    row[:len(data)] = np.frombuffer(data, np.uint8)
  return out


def decode_ids(encoded: np.ndarray) -> np.ndarray:
  """Inverse of :func:`encode_ids`: (B, 256) uint8 -> (B,) bytes."""
  return np.array([bytes(row).rstrip(b'\0') for row in np.asarray(encoded, np.uint8)],
                  dtype=object)


def write_confusion(path: str, confusion: np.ndarray, class_names: Sequence[str]) -> None:
  """CSV: one row per true class (name, count, accuracy, then counts per predicted class).

  The accuracy of a class without examples is empty, not 0.
  """
  f = io.StringIO(newline='')
  w = csv.writer(f)
  w.writerow(['true \\ predicted', 'count', 'accuracy'] + list(class_names))
  for i, name in enumerate(class_names):
    total = int(confusion[i].sum())
    w.writerow([name, total, f'{confusion[i, i] / total:.4f}' if total else '']
               + [int(v) for v in confusion[i]])
  wd.write_atomic(path, f.getvalue())


def write_report(workdir: str, split: str, acc: Accumulator, class_names: Sequence[str],
                 step: int, extra: Optional[Dict] = None) -> Dict:
  """Writes ``eval_<split>.json`` (metrics + per-class accuracy) and ``confusion_<split>.csv``.

  Classes without examples in the split get accuracy null and are listed in
  ``absent_classes`` (a class absent from validation is not a class the model fails).
  """
  metrics = acc.result()
  per_class = acc.per_class_accuracy()
  absent = set(acc.absent_classes().tolist())
  report = dict(split=split, step=int(step), **metrics,
                per_class_accuracy={n: None if i in absent else float(a)
                                    for i, (n, a) in enumerate(zip(class_names, per_class))},
                absent_classes=[class_names[i] for i in sorted(absent)],
                **(extra or {}))
  wd.write_atomic(wd.join(workdir, wd.eval_report(split)), json.dumps(report, indent=1))
  write_confusion(wd.join(workdir, wd.confusion(split)), acc.confusion, class_names)
  if acc.keep_predictions:
    wd.write_atomic(wd.join(workdir, wd.predictions(split)), wd.npz_bytes(**acc.predictions()))
  return report
