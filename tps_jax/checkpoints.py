"""Preemption-safe checkpoints: orbax ``CheckpointManager`` over ``WORKDIR/checkpoints``
(integrity, the checksums and the trust in a step, is :mod:`tps_jax.integrity`).

Each step directory holds two items: ``state`` (the TrainState, saved asynchronously,
restored directly into its shardings) and ``meta`` (JSON: the model config and class
count), so a workdir of a different model is refused before anything is compiled.
Orbax commits a step atomically (write to a temporary dir, then rename), so a kill at
any moment leaves the previous checkpoints intact. Once a step this run saved is committed,
process 0 writes ``checksums.json`` into it (SHA-256 of every file); a step whose files no
longer match, or that orbax cannot read, is moved aside to ``checkpoints/bad_<step>_<time>``
(never deleted) and the previous step is used instead. A step whose manifest is missing,
unreadable or omits a file is trusted only after a restore and a finite check, with a
warning, and no manifest is ever written over it (that would bless its corruption).
``checkpoints_best`` is sealed the same way. Every path goes through
:mod:`tps_jax.workdir`, so all of this holds on a local disk and on ``gs://`` alike (there
orbax marks a committed step with ``commit_success.txt`` instead of a rename).
"""
import datetime
import errno
import os
import shutil
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
import jax
import numpy as np
import orbax.checkpoint as ocp

from tps_jax import integrity
from tps_jax import workdir as wd

# Model fields that may change between a checkpoint and a resumed run (regularisation and
# compute options); every other field changes the parameters.
_MUTABLE_MODEL_FIELDS = ('drop_path_rate', 'attn_drop_rate', 'head_dropout_rate', 'dtype',
                         'remat', 'shift_impl', 'size')


def _norm(v):
  """Tuples as lists, as they come back from JSON."""
  if isinstance(v, (list, tuple)):
    return [_norm(x) for x in v]
  return v


def _meta(config, num_classes: Optional[int]) -> Dict[str, Any]:
  model = {k: _norm(v) for k, v in config.model.to_dict().items()}
  return {'model': model, 'num_classes': num_classes}


def _read_meta(manager, directory: str, step: int,
               verdict: Optional[Tuple[str, str]] = None) -> Dict[str, Any]:
  """The ``meta`` item of a step, unless it is corrupt; ValueError naming the step if bad.

  ``verdict``: the step's :func:`integrity.verify`, when the caller has it already.
  """
  step_dir = wd.join(directory, str(step))
  status, reason = verdict or integrity.verify(step_dir)
  if status != integrity.BAD:
    try:
      meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']
      if not isinstance(meta, dict) or not {'model', 'num_classes'} <= set(meta):
        raise ValueError('not the metadata of this code')
      return meta
    except Exception as e:  # pylint: disable=broad-except
      reason = f'its meta item is unreadable ({integrity.one_line(e)})'
  raise ValueError(f'checkpoint {step_dir} is bad: {reason}')


def _compare(manager, directory: str, meta: Dict[str, Any]) -> None:
  steps = integrity.committed_steps(directory)
  stored = None
  for step in reversed(steps):  # the newest readable step (bad ones are moved aside later)
    try:
      stored = _read_meta(manager, directory, step)
      break
    except ValueError:
      continue
  if stored is None:
    return
  if meta.get('num_classes') is not None and stored['num_classes'] != meta['num_classes']:
    raise ValueError(f'{directory} holds a checkpoint (step {step}) with '
                     f'{stored["num_classes"]} classes, this data set has '
                     f'{meta["num_classes"]}: use a new --workdir')
  here, there = meta['model'], stored['model']
  for key in sorted(set(here) | set(there)):
    if key not in _MUTABLE_MODEL_FIELDS and _norm(here.get(key)) != _norm(there.get(key)):
      raise ValueError(f'{directory} holds a checkpoint (step {step}) of a different model: '
                       f'config.model.{key}={there.get(key)!r} there, {here.get(key)!r} '
                       'here; use a new --workdir')


def _manager(directory: str, *, partial: bool = False, **options) -> ocp.CheckpointManager:
  """An orbax manager of the one step layout (items ``state`` and ``meta``); ``partial``:
  handlers that restore part of ``state`` (its params) and read its metadata."""
  options = ocp.CheckpointManagerOptions(create=not options.get('read_only'), **options)
  if partial:
    return ocp.CheckpointManager(directory, options=options, item_handlers={
        'state': ocp.PyTreeCheckpointHandler(), 'meta': ocp.JsonCheckpointHandler()})
  return ocp.CheckpointManager(directory, item_names=('state', 'meta'), options=options)


def check_workdir(workdir: str, config) -> None:
  """The model check of :meth:`Checkpoints.check_compatible`, before any data is prepared."""
  directory = wd.join(wd.resolve(workdir), wd.CHECKPOINTS)
  if not integrity.committed_steps(directory):
    return
  manager = _manager(directory, read_only=True)
  try:
    _compare(manager, directory, _meta(config, None))
  finally:
    manager.close()


def earlier_checkpoints(workdir: str) -> List[str]:
  """What shows that ``workdir`` held checkpoints: its ``bad_*`` steps and best steps."""
  root = wd.resolve(workdir)
  bad = [wd.join(root, wd.CHECKPOINTS, d) for d in wd.listdir(wd.join(root, wd.CHECKPOINTS))
         if d.startswith('bad_')]
  best = [wd.join(root, wd.BEST, str(s)) for s in integrity.committed_steps(wd.join(root, wd.BEST))]
  return bad + best


def check_no_silent_restart(workdir: str, config) -> None:
  """Raises a one-line ValueError when ``workdir`` had checkpoints but has no committed step,
  so a rerun after "no usable checkpoint" does not quietly train from scratch beside them."""
  directory = wd.join(wd.resolve(workdir), wd.CHECKPOINTS)
  if integrity.committed_steps(directory) or config.checkpoint.start_over:
    return
  earlier = earlier_checkpoints(workdir)
  if earlier:
    raise ValueError(f'{directory} has no usable checkpoint, but this workdir held some '
                     f'({earlier[0]}{", ..." if len(earlier) > 1 else ""}): set '
                     '--config.checkpoint.start_over=True to train from scratch beside them, '
                     'or use a new --workdir')


class Checkpoints:
  """The run's checkpoints: save every K steps (async), keep N, integrity.verify and fall back.

  Args:
    workdir: the run's directory; checkpoints go to ``workdir/checkpoints``.
    config: the experiment config (``config.checkpoint`` and ``config.model``).
    num_classes: classes of the model's head (stored in the metadata).
  """

  def __init__(self, workdir: str, config, num_classes: int, *, read_only: bool = False):
    self.directory = wd.join(wd.resolve(workdir), wd.CHECKPOINTS)
    c = config.checkpoint
    self.meta = _meta(config, num_classes)
    self.read_only = read_only
    self.manager = _manager(self.directory, save_interval_steps=c.every_steps,
                            max_to_keep=c.keep, enable_async_checkpointing=c.asynchronous,
                            read_only=read_only)
    self._saved = set()  # the steps this run saved: the only ones it may seal

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def check_compatible(self) -> None:
    """Raises a one-line ValueError when the latest checkpoint is of a different model."""
    _compare(self.manager, self.directory, self.meta)

  def restore(self, abstract_state, step: Optional[int] = None):
    """The state at ``step`` (default: latest), born in ``abstract_state``'s shardings."""
    step = self.latest_step() if step is None else step
    restored = self.manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
    return restored['state']

  def move_aside(self, step: int) -> str:
    """Renames a bad step directory out of orbax's step naming (kept for inspection)."""
    stamp = datetime.datetime.now().strftime('%Y%m%dT%H%M%S')
    target = wd.join(self.directory, f'bad_{step}_{stamp}')
    if jax.process_index() == 0:
      wd.rename(wd.join(self.directory, str(step)), target)
    self.manager.reload()
    return target

  def restore_latest(self, abstract_state) -> Tuple[Any, Optional[int]]:
    """The newest step that verifies and restores, as ``(state, step)``; ``(None, None)``
    when there is no checkpoint.

    A step whose checksums do not match, that orbax cannot read, or that no manifest vouches
    for and holds a NaN/inf is named in one warning line and moved aside (read-only:
    skipped), and the previous step is tried; an unverified step that restores finite is
    used with a warning. A step deleted meanwhile (the training run's ``keep`` while
    evaluating) is skipped. Raises a one-line ValueError when no step is usable.
    """
    bad = []
    for step in reversed(integrity.committed_steps(self.directory)):
      step_dir = wd.join(self.directory, str(step))
      status, reason = integrity.verify(step_dir)
      if status != integrity.BAD:
        try:
          self.manager.reload()
          state = self.restore(abstract_state, step)
        except Exception as e:  # pylint: disable=broad-except
          if step not in integrity.committed_steps(self.directory):  # garbage-collected meanwhile
            logging.warning('checkpoint %s was deleted while being read; trying the newest',
                            step_dir)
            return self.restore_latest(abstract_state)
          if status == integrity.OK:  # intact: the config differs
            raise ValueError(f'checkpoint {step_dir} is intact but does not restore into '
                             f'this config\'s state ({integrity.one_line(e)}): use the config it was '
                             'trained with, or a new --workdir') from None
          reason = f'{reason}, and restore failed: {integrity.one_line(e)}'
        else:
          leaf = integrity.nonfinite_leaf(state) if status == integrity.UNVERIFIED else None
          if leaf is None:
            if status == integrity.UNVERIFIED:
              integrity.warn_unverified(step_dir, reason)
            return state, step
          reason = f'{reason}, and {leaf} is not finite'
      if self.read_only:
        logging.warning('checkpoint %s is bad (%s): skipped', step_dir, reason)
      else:
        logging.warning('checkpoint %s is bad (%s): moved to %s; falling back to the '
                        'previous step', step_dir, reason, self.move_aside(step))
      bad.append(step)
    if bad:
      aside = '' if self.read_only else '; moved aside as bad_*'
      raise ValueError(f'no usable checkpoint in {self.directory}: steps {bad} are bad '
                       f'(see the warnings above{aside})')
    return None, None

  def seal(self, *, finished: bool) -> None:
    """Writes ``checksums.json`` into the committed steps this run saved (process 0).

    Args:
      finished: no save is in flight (after ``wait_until_finished`` or a synchronous
        save); otherwise the newest step may still be written and is left for later.
    """
    if not self.read_only:
      integrity.seal(self.manager, self.directory, self._saved, finished=finished)

  def save(self, step: int, state, *, force: bool = False) -> bool:
    """Saves (asynchronously) when ``step`` is due, or always with ``force``; checksums
    the steps committed by then (orbax finishes the previous save before a new one)."""
    if force or self.manager.should_save(step):
      check_room(self.directory, state)
    saved = self.manager.save(
        step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                      meta=ocp.args.JsonSave(dict(self.meta, step=int(step)))),
        force=force)
    if saved:
      self._saved.add(int(step))
      self.seal(finished=False)
    return saved

  def close(self) -> None:
    """Waits for pending saves (never leave with a half-written checkpoint) and closes."""
    try:
      self.manager.wait_until_finished()
      self.seal(finished=True)
    finally:
      self.manager.close()


BEST = wd.BEST


def _manager_dir(path: str) -> Optional[str]:
  """``path`` itself or its ``checkpoints/`` when it holds orbax step directories."""
  for d in (wd.join(path, wd.CHECKPOINTS), path):
    if any(wd.isdir(wd.join(d, str(step), 'state')) for step in integrity.committed_steps(d)):
      return d
  return None


def is_checkpoint_dir(path: str) -> bool:
  """True for a training workdir or a checkpoint manager directory (``checkpoints_best``)."""
  return _manager_dir(path) is not None


def state_bytes(state) -> int:
  """Bytes this process writes for ``state``: its first replica of each addressable shard."""
  total = 0
  for leaf in jax.tree.leaves(state):
    shards = getattr(leaf, 'addressable_shards', None)
    if shards is None:
      total += getattr(leaf, 'nbytes', 0)
    else:
      total += sum(s.data.nbytes for s in shards if s.replica_id == 0)
  return total


def check_room(directory: str, state) -> None:
  """Refuses a save that cannot fit, before orbax writes a byte (``OSError`` ENOSPC).

  A save that runs out of space half-way fails in a dozen of orbax's and tensorstore's
  threads at once, each printing its own traceback before the error reaches the run. The
  state's raw bytes are the estimate, and a low one: zstd gains little on weights and Adam
  moments, and orbax adds metadata.
  A save that still runs out (another writer on the disk) fails as orbax fails. Object
  stores do not fill up.
  """
  if wd.is_url(directory):
    return
  need = state_bytes(state)
  existing = directory
  while not os.path.isdir(existing) and os.path.dirname(existing) != existing:
    existing = os.path.dirname(existing)
  free = shutil.disk_usage(existing).free
  if free < need:
    raise OSError(errno.ENOSPC, f'No space left on device: a checkpoint needs '
                  f'{need / 2**20:.1f} MiB', directory)


class BestCheckpoint:
  """The best checkpoint by a validation metric, in ``workdir/checkpoints_best`` (orbax
  best_fn; ``mode`` 'max' or 'min').

  Kept besides the latest ones of :class:`Checkpoints`; same layout (``state`` + ``meta``),
  so ``--config.init_from=WORKDIR/checkpoints_best`` evaluates or fine-tunes it.
  """

  def __init__(self, workdir: str, config, num_classes: int, metric: str = 'val_top1',
               mode: str = 'max'):
    self.directory = wd.join(wd.resolve(workdir), BEST)
    self.metric = metric
    self.meta = _meta(config, num_classes)
    self.manager = _manager(self.directory, max_to_keep=1, best_fn=lambda m: m[metric],
                            best_mode=mode, keep_checkpoints_without_metrics=False,
                            enable_async_checkpointing=config.checkpoint.asynchronous)
    self._saved = set()

  def best_step(self) -> Optional[int]:
    return self.manager.best_step()

  def save(self, step: int, state, value: float) -> None:
    """Saves ``state`` with its metric; orbax keeps only the best one."""
    if step in self.manager.all_steps():  # resumed before this step's regular checkpoint
      return
    check_room(self.directory, state)
    self.manager.save(
        step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                      meta=ocp.args.JsonSave(dict(self.meta, step=int(step),
                                                                  **{self.metric: value}))),
        metrics={self.metric: float(value)}, force=True)
    self._saved.add(int(step))
    integrity.seal(self.manager, self.directory, self._saved, finished=False)

  def close(self) -> None:
    """Waits for the pending save, seals it (checksums, as for the latest steps), closes."""
    try:
      self.manager.wait_until_finished()
      integrity.seal(self.manager, self.directory, self._saved, finished=True)
    finally:
      self.manager.close()


def restore_params(path: str, abstract_params=None) -> Tuple[Any, Dict[str, Any]]:
  """The parameters (never the optimizer state) of a run's newest good checkpoint.

  What ``config.init_from=WORKDIR`` (fine-tuning from another run) and the inference API
  read. Steps are verified against their checksums as in :meth:`Checkpoints.restore_latest`;
  a bad one is named in a warning and skipped (read-only: nothing is moved).

  Args:
    path: a training workdir, or its ``checkpoints`` / ``checkpoints_best`` directory.
    abstract_params: ``jax.ShapeDtypeStruct`` leaves with their shardings; None: host
      numpy arrays in the stored shapes.

  Returns:
    ``(params, meta)``; ``meta`` is the step's meta item (``model``, ``num_classes``) with
    its ``step``.

  Raises:
    FileNotFoundError: ``path`` holds no checkpoint. ValueError: no step is usable.
  """
  path = wd.resolve(path)
  directory = _manager_dir(path)
  if directory is None:
    inner = wd.join(path, wd.CHECKPOINTS)
    raise FileNotFoundError(f'no checkpoint in {inner if wd.isdir(inner) else path}')
  for attempt in range(_GC_RETRIES + 1):
    manager = _manager(directory, read_only=True, partial=True)
    try:
      steps = integrity.committed_steps(directory)
      for step in reversed(steps):
        try:
          return _restore_step_params(manager, directory, step, abstract_params)
        except Exception as e:  # pylint: disable=broad-except
          if step not in integrity.committed_steps(directory) and attempt < _GC_RETRIES:
            break  # a training run's `keep` deleted it while it was read: list again
          logging.warning('checkpoint %s/%d is bad (%s): skipped', directory, step,
                          integrity.one_line(e))
      else:
        break
      logging.warning('checkpoint %s/%d was deleted while being read; trying the newest',
                      directory, step)
    finally:
      manager.close()
  raise ValueError(f'no usable checkpoint in {directory}')


_GC_RETRIES = 3  # re-listings when the step being read is deleted by a training run


def _restore_step_params(manager, directory: str, step: int, abstract_params):
  """``(params, meta)`` of one step of :func:`restore_params`; raises when it is bad."""
  step_dir = wd.join(directory, str(step))
  status, why = integrity.verify(step_dir)
  meta = _read_meta(manager, directory, step, (status, why))
  if abstract_params is None:
    stored = manager.item_metadata(step)['state']['params']
    target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype), stored)
    args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), target)
  else:
    target = abstract_params
    args = ocp.checkpoint_utils.construct_restore_args(target)
  restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
      item={'params': target}, restore_args={'params': args}, partial_restore=True)))
  params = restored['state']['params']
  if status == integrity.UNVERIFIED:
    leaf = integrity.nonfinite_leaf(params)
    if leaf is not None:
      raise ValueError(f'{why}, and params{leaf} is not finite')
    integrity.warn_unverified(step_dir, why)
  return params, dict(meta, step=int(step))
