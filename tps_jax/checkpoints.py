"""Preemption-safe checkpoints: orbax ``CheckpointManager`` over ``WORKDIR/checkpoints``.

Each step directory holds two items: ``state`` (the TrainState, saved asynchronously,
restored directly into its shardings) and ``meta`` (JSON: the model config and class
count), so a workdir of a different model is refused before anything is compiled.
Orbax commits a step atomically (write to a temporary dir, then rename), so a kill at
any moment leaves the previous checkpoints intact.
"""
import os
import signal
import threading
from typing import Any, Dict, Optional

from absl import logging
import jax
import orbax.checkpoint as ocp

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


def _compare(manager, directory: str, meta: Dict[str, Any]) -> None:
  step = manager.latest_step()
  if step is None:
    return
  stored = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']
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


def check_workdir(workdir: str, config) -> None:
  """The model check of :meth:`Checkpoints.check_compatible`, before any data is prepared."""
  directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
  if not os.path.isdir(directory):
    return
  manager = ocp.CheckpointManager(
      directory, item_names=('state', 'meta'),
      options=ocp.CheckpointManagerOptions(read_only=True, create=False))
  try:
    _compare(manager, directory, _meta(config, None))
  finally:
    manager.close()


class Checkpoints:
  """The run's checkpoints: save every K steps (async), keep N, save on SIGTERM.

  Args:
    workdir: the run's directory; checkpoints go to ``workdir/checkpoints``.
    config: the experiment config (``config.checkpoint`` and ``config.model``).
    num_classes: classes of the model's head (stored in the metadata).
  """

  def __init__(self, workdir: str, config, num_classes: int):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    c = config.checkpoint
    self.meta = _meta(config, num_classes)
    self.manager = ocp.CheckpointManager(
        self.directory, item_names=('state', 'meta'),
        options=ocp.CheckpointManagerOptions(
            save_interval_steps=c.every_steps, max_to_keep=c.keep,
            enable_async_checkpointing=c.asynchronous, create=True))
    self._sigterm = threading.Event()
    self._previous_handler = None

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

  def save(self, step: int, state, *, force: bool = False) -> bool:
    """Saves (asynchronously) when ``step`` is due, or always with ``force``."""
    return self.manager.save(
        step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                      meta=ocp.args.JsonSave(dict(self.meta, step=int(step)))),
        force=force)

  def should_stop(self, step: int) -> bool:
    """True after SIGTERM (single process) or at a preemption sync point (multi-host)."""
    return self._sigterm.is_set() or self.manager.reached_preemption(step)

  def install_sigterm_handler(self) -> None:
    """On SIGTERM, finish the current step, save and exit (single-process runs).

    Multi-process runs leave SIGTERM to JAX's preemption service, which agrees on a
    common step across hosts (:meth:`should_stop`).
    """
    if jax.process_count() > 1 or threading.current_thread() is not threading.main_thread():
      return
    def handler(signum, frame):
      del frame
      logging.warning('signal %d: saving a checkpoint after this step, then stopping', signum)
      self._sigterm.set()
    self._previous_handler = signal.signal(signal.SIGTERM, handler)

  def close(self) -> None:
    """Waits for pending saves (never leave with a half-written checkpoint) and closes."""
    self.manager.wait_until_finished()
    self.manager.close()
    if self._previous_handler is not None:
      signal.signal(signal.SIGTERM, self._previous_handler)
      self._previous_handler = None


def _open_read_only(workdir: str):
  """``(directory, manager)`` of a workdir's checkpoints; FileNotFoundError if it has none."""
  directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
  if not os.path.isdir(directory):
    raise FileNotFoundError(f'no checkpoints/ in {workdir}')
  manager = ocp.CheckpointManager(
      directory, item_names=('state', 'meta'),
      options=ocp.CheckpointManagerOptions(read_only=True, create=False))
  if manager.latest_step() is None:
    manager.close()
    raise FileNotFoundError(f'no checkpoint in {directory}')
  return directory, manager


def read_meta(workdir: str, step: Optional[int] = None) -> Dict[str, Any]:
  """The ``meta`` item (``model``, ``num_classes``, ``step``) of a checkpoint (default: latest)."""
  _, manager = _open_read_only(workdir)
  try:
    step = manager.latest_step() if step is None else step
    meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']
    return dict(meta, step=int(step))
  finally:
    manager.close()


def restore_params(workdir: str, abstract_params, step: Optional[int] = None):
  """Only the parameters of a checkpoint (default: latest); the optimizer state is not read.

  Args:
    workdir: a ``main.py`` workdir.
    abstract_params: ``jax.ShapeDtypeStruct`` leaves with their shardings.
    step: the checkpoint's step.
  """
  _, manager = _open_read_only(workdir)
  try:
    step = manager.latest_step() if step is None else step
    target = {'params': abstract_params}
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
        partial_restore=True)))
    return restored['state']['params']
  finally:
    manager.close()
