"""Run reporting: metric writers, a JSON-lines history, the curves PNG, the final JSON.

TensorBoard and the log get everything through clu's ``metric_writers``; alongside, the
scalars go to ``WORKDIR/history.jsonl`` (one line per write, appended, so a resumed run
keeps its past), from which :func:`plot_history` draws ``WORKDIR/curves.png``. A line
cut short (a crash or a full disk during an append) is skipped with a warning; plots and
JSON files are written atomically (:func:`tps_jax.workdir.write_atomic`). Object stores
have no append: there the history is kept in memory and rewritten whole at each write
(one atomic PUT of a few kB to a few MB), so it is never cut short.
"""
import json
import logging as py_logging
import io
import os
from typing import Dict, List, Mapping

from absl import logging
from clu import metric_writers
import numpy as np

from tps_jax import workdir as wd

HISTORY = wd.HISTORY


class _DropLibraryInfo(py_logging.Filter):
  """Orbax logs every file it writes, fsspec every file it opens (gs://), at INFO; keep
  their warnings and errors only."""

  def filter(self, record):
    return record.levelno >= py_logging.WARNING or not any(
        f'/{name}/' in record.pathname for name in ('orbax', 'fsspec', 'gcsfs'))


def setup_logging(quiet: bool = False) -> None:
  """INFO logging without the checkpoint library's chatter; WARNING only when ``quiet``."""
  logging.set_verbosity(logging.WARNING if quiet else logging.INFO)
  logging.get_absl_logger().addFilter(_DropLibraryInfo())


class Writer:
  """clu's default writer (TensorBoard + log) plus the JSON-lines history.

  Args:
    workdir: the run directory.
    enabled: False on processes other than 0 (they only log).
    tensorboard: write TensorBoard events too (``config.tensorboard``).
  """

  def __init__(self, workdir: str, enabled: bool = True, tensorboard: bool = True):
    self.workdir = workdir
    self.enabled = enabled
    self.writer = metric_writers.create_default_writer(
        workdir, just_logging=not (enabled and tensorboard))
    self.path = wd.join(workdir, HISTORY)
    self._history = None  # object stores: the whole history, rewritten at each write
    if enabled and wd.is_url(workdir):
      self._history = wd.read_text(self.path) if wd.exists(self.path) else ''
    elif enabled and os.path.isfile(self.path) and os.path.getsize(self.path):
      with open(self.path, 'rb+') as f:  # a cut-short last line must not swallow the next one
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b'\n':
          f.write(b'\n')

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    scalars = {k: float(v) for k, v in scalars.items()}
    self.writer.write_scalars(step, scalars)
    if self.enabled:
      line = json.dumps(dict(step=int(step), **scalars)) + '\n'
      if self._history is None:
        wd.append_text(self.path, line)
      else:
        if self._history and not self._history.endswith('\n'):
          self._history += '\n'
        self._history += line
        wd.write_atomic(self.path, self._history)

  def write_hparams(self, hparams: Mapping) -> None:
    self.writer.write_hparams(dict(hparams))

  def flush(self) -> None:
    self.writer.flush()

  def close(self) -> None:
    self.writer.close()


def read_history(workdir: str) -> Dict[str, List]:
  """``{name: [(step, value), ...]}``; a step written twice (resume) keeps its last value."""
  path = wd.join(workdir, HISTORY)
  by_name: Dict[str, Dict[int, float]] = {}
  text = wd.read_text(path) if wd.isfile(path) else ''
  for number, line in enumerate(text.splitlines(), 1):
    try:
      row = json.loads(line)
      step = int(row.pop('step'))  # inf (1e400): OverflowError
      if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row.values()):
        raise ValueError('a value is not a number')
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
      if line.strip():
        logging.warning('%s line %d is damaged (a write cut short?): skipped', path, number)
      continue
    for k, v in row.items():
      by_name.setdefault(k, {})[step] = v
  return {k: sorted(v.items()) for k, v in by_name.items()}


def plot_history(workdir: str, filename: str = wd.CURVES) -> str:
  """Draws train loss / accuracy and the validation / eval points against step.

  Returns:
    The PNG path.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  hist = read_history(workdir)
  fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
  for name in sorted(hist):
    steps, values = np.asarray(hist[name]).T if hist[name] else ([], [])
    marker = 'o' if name.startswith(('eval', 'val_')) else None  # sparse points
    if name.endswith('loss'):
      ax_loss.plot(steps, values, label=name, marker=marker)
    elif name.endswith(('accuracy', 'top1', 'top5')):
      ax_acc.plot(steps, values, label=name, marker=marker)
  ax_loss.set(xlabel='step', ylabel='loss', title='loss')
  ax_acc.set(xlabel='step', ylabel='accuracy', title='accuracy', ylim=(0, 1.02))
  for ax in (ax_loss, ax_acc):
    if ax.lines:
      ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
  fig.tight_layout()
  path = wd.join(workdir, filename)
  buf = io.BytesIO()
  try:
    fig.savefig(buf, dpi=100, format=os.path.splitext(filename)[1][1:] or 'png')
  finally:
    plt.close(fig)
  wd.write_atomic(path, buf.getvalue())
  return path


def done_line(summary: Mapping, report: str) -> str:
  """The last line of a run: where it ended and its numbers, not the whole summary (that
  is in ``report``, e.g. ``metrics.json``)."""
  parts = [f'step {summary.get("step")}' + ('' if summary.get('finished', True)
                                            else ' (stopped early)')]
  best, metric = summary.get('best_validation'), summary.get('best_metric', 'val_top1')
  if best:
    name = metric.replace('_', ' ').replace('top1', 'top-1').replace('top5', 'top-5')
    parts.append(f'best {name} {best[metric]:.4f} at step {best["step"]}')
  for split, r in sorted((summary.get('eval') or {}).items()):
    parts.append(f'{split} top-1 {r["top1"]:.4f} top-5 {r["top5"]:.4f} ({r["count"]} videos)')
  return f'done: {"; ".join(parts)}; from {summary.get("source")}; summary in {report}'


def write_json(path: str, payload: Mapping) -> None:
  """Writes ``payload`` atomically (:func:`tps_jax.workdir.write_atomic`)."""
  wd.write_atomic(path, json.dumps(payload, indent=1, sort_keys=True))


def read_validation(workdir: str):
  """The validation points of earlier sessions of this run (resume keeps its curve)."""
  path = wd.join(workdir, wd.VALIDATION)
  if not wd.isfile(path):
    return []
  try:
    points = json.loads(wd.read_text(path))['points']
    if not all(isinstance(p, dict) and isinstance(p.get('step'), int) for p in points):
      raise ValueError('a point without an integer step')
    return points
  except (ValueError, TypeError, KeyError) as e:  # a write cut short, an edit
    history = read_history(workdir)
    by_step = {}
    for name in ('val_top1', 'val_top5', 'val_loss'):
      for step, value in history.get(name, []):
        by_step.setdefault(step, {'step': step})[name] = value
    logging.warning('%s is damaged (%s): its %d points rebuilt from %s', path,
                    str(e).splitlines()[0][:100], len(by_step), wd.HISTORY)
    return [by_step[s] for s in sorted(by_step)]
