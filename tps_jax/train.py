"""The run: set-up checks, the training loop and ``--mode=evaluate`` around the steps of
:mod:`tps_jax.steps`. Every number comes from the config.

Restore order (big_vision's): the workdir's latest checkpoint, else ``config.init_from``
(another run's workdir, a converted official checkpoint or inflated ImageNet Swin
weights), else scratch; the paper's configs (``config.init_required``) refuse to start from
random weights unless ``config.init_from='scratch'`` says so. ``WORKDIR/init.json`` keeps
where the weights came from, so a resumed run still reports it.

While training, the eval split is validated every ``config.eval_every_epochs`` with the
cheap protocol (``config.eval.val_num_clips`` x ``val_num_crops`` views: one centre crop of
one clip, as the official ``evaluation = dict(interval=5)``); the best state by
``config.eval.best_metric`` is kept in ``WORKDIR/checkpoints_best``. The test protocol
runs once, at the end.
"""
import dataclasses
import functools
import json
import signal
import threading
import time
from typing import Any, Dict, Optional, Sequence, Tuple

from absl import logging
from clu import periodic_actions
import flax
import jax
import numpy as np

import input_pipeline
from input_pipeline import readers
from tps_jax import checkpoints
from tps_jax import integrity
from tps_jax import evaluation
from tps_jax import host
from tps_jax import locking
from tps_jax import models
from tps_jax import optim
from tps_jax import reporting
from tps_jax import run_config
from tps_jax import sharding
from tps_jax import steps
from tps_jax import workdir as wd

MODES = ('train', 'evaluate', 'train_and_evaluate')
INIT_FILE = wd.INIT              # where the weights of step 0 came from
VALIDATION_FILE = wd.VALIDATION  # the validation points, kept across resumes
QUOTES = '"\''  # KeyError messages come quoted


class SetupError(ValueError):
  """A config, workdir or path that cannot work, found before anything is compiled."""


class RunError(RuntimeError):
  """A failure during the run with a one-line cause (e.g. the disk is full)."""


class _StopRequest:
  """SIGTERM or SIGINT (Ctrl-C): finish the current step, save and stop (a second Ctrl-C
  interrupts at once). Single-process runs only: multi-process runs leave SIGTERM to JAX's
  preemption service, which agrees on a common step across hosts (orbax's
  ``reached_preemption``)."""

  def __init__(self):
    self.signal = None  # the signal that asked the run to stop
    self._previous = {}

  def install(self) -> None:
    if jax.process_count() > 1 or threading.current_thread() is not threading.main_thread():
      return
    def handler(signum, frame):
      del frame
      if signum == signal.SIGINT and self.signal is not None:
        raise KeyboardInterrupt
      logging.warning('signal %d: saving a checkpoint after this step, then stopping', signum)
      self.signal = signum
    for signum in (signal.SIGTERM, signal.SIGINT):
      self._previous[signum] = signal.signal(signum, handler)

  def due(self, step: int, manager) -> bool:
    if self.signal is None and manager.reached_preemption(step):
      self.signal = int(signal.SIGTERM)
    return self.signal is not None

  def uninstall(self) -> None:
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)
    self._previous = {}


class _Run:
  """What both modes set up before compiling anything (all bad-input checks happen here)."""

  def __init__(self, config, workdir: str, *, evaluate_only: bool = False,
               eval_splits: Sequence[str] = ()):
    """``evaluate_only``: take no lock, write nothing before a checkpoint is found.
    ``eval_splits``: the splits this run evaluates (an empty one is refused up front)."""
    self.config, self.workdir = config, workdir
    self.evaluate_only = evaluate_only
    # --mode=evaluate's reports beside, not over, those of the training in this workdir.
    self.reports = wd.join(workdir, wd.EVALUATE_DIR) if evaluate_only else workdir
    self.lock = None
    try:
      run_config.check_config(config)
      self.mesh = sharding.make_mesh(config)
      wd.check_storage(workdir)
      if run_config.init_path(config):
        wd.check_storage(config.init_from, 'config.init_from')
      if config.dataset.data_dir:
        wd.check_storage(config.dataset.data_dir, 'config.dataset.data_dir')
      if run_config.init_path(config) and not wd.exists(config.init_from):
        raise FileNotFoundError(f'config.init_from: no such checkpoint: {config.init_from}')
      checkpoints.check_workdir(workdir, config)
      if not evaluate_only:
        checkpoints.check_no_silent_restart(workdir, config)
      if not evaluate_only and not checkpoints.is_checkpoint_dir(workdir):
        run_config.check_init(config)  # before the data set is prepared
      ckpt_dir = wd.join(wd.resolve(workdir), wd.CHECKPOINTS)
      if evaluate_only and not run_config.init_path(config) and not integrity.committed_steps(ckpt_dir):
        raise ValueError(f'nothing to evaluate: no checkpoint in {ckpt_dir} and no '
                         'config.init_from')
      input_pipeline.prepare(config.dataset)  # rendered / built on first use
      self.info = input_pipeline.get_dataset_info(config)
      _check_not_empty(config, self.info, eval_splits)
      train_examples = self.info.num_examples[config.dataset.splits.train]
      if not evaluate_only and run_config.schedule_steps(config, train_examples)[0] <= 0:
        raise ValueError(f'{config.dataset.name} {config.dataset.splits.train}: '
                         f'{train_examples} examples x config.num_epochs={config.num_epochs} '
                         'make no training step')
      wd.makedirs(self.reports)
      if not evaluate_only:  # process 0 locks for all: the others are the same run
        self.lock = locking.acquire_for_all(workdir, config.checkpoint.lock_lease_minutes * 60)
      self.ckpt = checkpoints.Checkpoints(workdir, config, self.info.num_classes,
                                          read_only=evaluate_only)
      self.ckpt.check_compatible()
      self.writer = reporting.Writer(workdir, enabled=sharding.is_main_process(),
                                     tensorboard=config.tensorboard)
    except BaseException as e:  # a lock taken here must not outlive a failed start
      if self.lock:
        self.lock.release()
      if isinstance(e, OSError) and e.filename and e.strerror:  # an unwritable workdir
        raise SetupError(f'{e.filename}: {e.strerror}') from e
      if isinstance(e, (ValueError, FileNotFoundError, KeyError)):
        raise SetupError(str(e).strip('"\'')) from e
      raise
    self.model = models.build_model(config.model, self.info.num_classes)
    self.num_train_steps, self.steps_per_epoch = run_config.schedule_steps(
        config, self.info.num_examples[config.dataset.splits.train])
    self.rng = jax.random.key(config.seed)
    self.init: Dict[str, Any] = {}
    self.best: Optional[checkpoints.BestCheckpoint] = None  # created by training
    self.stop = _StopRequest()  # installed by training

  def initial_state(self) -> Tuple[steps.TrainState, str]:
    """The state to start from and where it came from (restore order of the docstring)."""
    kw = dict(mesh=self.mesh, num_train_steps=self.num_train_steps,
              steps_per_epoch=self.steps_per_epoch)
    init_rng = jax.random.fold_in(self.rng, 0)
    init_file = wd.join(self.workdir, INIT_FILE)
    if self.ckpt.latest_step() is not None:
      target = steps.create_train_state(self.config, self.model, init_rng, abstract=True, **kw)
      try:
        state, step = self.ckpt.restore_latest(target)
      except ValueError as e:
        raise SetupError(str(e)) from None
      if step is not None:
        if wd.isfile(init_file):
          self.init = json.loads(wd.read_text(init_file))
        return state, f'checkpoint step {step} in {self.ckpt.directory}'
    if run_config.init_path(self.config):
      from tps_jax import weights  # pylint: disable=g-import-not-at-top
      try:
        params, report = weights.load_params(
            self.config.init_from, self.config.model, self.info.num_classes, rng=init_rng)
      except (FileNotFoundError, ValueError, KeyError, ImportError) as e:  # they name the path
        raise SetupError(f'config.init_from: {str(e).strip(QUOTES)}') from None
      state = steps.create_train_state(self.config, self.model, init_rng, params=params, **kw)
      source, self.init = report.describe(), dataclasses.asdict(report)
    else:
      state = steps.create_train_state(self.config, self.model, init_rng, **kw)
      source = 'scratch (random weights' + (', config.init_from=scratch)'
                                            if self.config.init_from else ')')
      self.init = {'kind': 'scratch', 'source': self.config.init_from}
    self.init['description'] = source
    if sharding.is_main_process():
      reporting.write_json(init_file, self.init)
    return state, source

  def evaluate(self, p_eval, state, step: int, splits) -> Dict[str, Dict]:
    """The test protocol on ``splits``: their reports, and ``{split: metrics}``."""
    results = {}
    for split in map(functools.partial(evaluation.split_name, self.config), splits):
      t0 = time.time()
      acc = evaluation.evaluate_split(p_eval, state, self.config, self.mesh, self.info, split,
                                      keep_predictions=self.config.eval.write_predictions)
      metrics = acc.result()
      if sharding.is_main_process():
        evaluation.write_report(self.reports, split, acc, self.info.class_names, step)
        results[split] = dict(metrics, seconds=time.time() - t0)
      if not self.evaluate_only:  # the training's curve; --mode=evaluate adds no rows to it
        self.writer.write_scalars(step, {f'eval_{split}_{k}': v
                                         for k, v in metrics.items() if k != 'count'})
    self.writer.flush()
    return results

  def validate(self, p_eval, state, step: int) -> Dict[str, float]:
    """The validation protocol on ``config.eval.split_during_training``: scalars ``val_*``."""
    split = evaluation.split_name(self.config, self.config.eval.split_during_training)
    t0 = time.time()
    result = evaluation.evaluate_split(p_eval, state, self.config, self.mesh, self.info, split,
                                       protocol='validation').result()
    point = {f'val_{k}': float(v) for k, v in result.items() if k != 'count'}
    self.writer.write_scalars(step, point)
    self.writer.flush()
    point.update(step=int(step), epoch=step / self.steps_per_epoch,
                 seconds=time.time() - t0)
    logging.info('validation at step %d (epoch %.2f, %s): %s', step, point['epoch'], split,
                 ', '.join(f'{k} {v:.4f}' for k, v in result.items() if k != 'count'))
    return point

  def close(self) -> None:
    """Commits pending checkpoint writes first, so that nothing after (metrics, curves: a
    damaged history, a full disk) can lose them; then flushes, draws, unlocks."""
    try:
      try:
        self.ckpt.close()
      finally:
        if self.best is not None:
          self.best.close()
    finally:
      try:
        self.writer.close()
        if sharding.is_main_process():
          try:
            reporting.plot_history(self.workdir)
          except Exception as e:  # pylint: disable=broad-except  (never costs the metrics)
            logging.warning('curves not drawn: %s', integrity.one_line(e))
      finally:
        self.stop.uninstall()
        if self.lock:
          self.lock.release()


def _check_not_empty(config, info, splits: Sequence[str]) -> None:
  """An empty split would report top-1 0.0 and pick a best checkpoint from nothing."""
  for split in map(functools.partial(evaluation.split_name, config), splits):
    if info.num_examples.get(split) == 0:
      raise ValueError(f'{config.dataset.name} {split}: the split is empty (0 examples), '
                       'nothing to evaluate: fix the data, or config.eval.splits / '
                       'config.eval.split_during_training')


def _summary(run: _Run, state, **extra) -> Dict:
  return dict(config=run.config.to_dict(), num_classes=run.info.num_classes,
              num_params=models.count_params(state.params), step=int(state.step),
              init=run.init, **extra)


def evaluate(config, workdir: str) -> Dict:
  """Evaluates the workdir's latest checkpoint (or ``config.init_from``) on ``config.eval.splits``.

  Writes ``eval_<split>.json``, ``confusion_<split>.csv`` (and ``predictions_<split>.npz``
  with ``config.eval.write_predictions``) in ``workdir/evaluate/``, where they cannot replace
  the reports training wrote, and the summary ``evaluate.json`` in ``workdir``.
  """
  run = _Run(config, workdir, evaluate_only=True, eval_splits=config.eval.splits)
  try:
    state, source = run.initial_state()
    logging.info('evaluating %s', source)
    _, p_eval = steps.jit_steps(config, run.mesh, jax.tree.map(lambda x: x.sharding, state),
                                run.info)
    # From config.init_from the state starts at 0: report the step those weights reached.
    step = int(state.step) or int(run.init.get('step') or 0)
    results = run.evaluate(p_eval, state, step, config.eval.splits)
    summary = dict(_summary(run, state, source=source, eval=results), step=step)
  finally:
    run.close()
  if sharding.is_main_process():
    reporting.write_json(wd.join(workdir, wd.EVALUATE), summary)
  return summary


def train_and_evaluate(config, workdir: str, *, evaluate_during: bool = True) -> Dict:
  """Trains ``config`` in ``workdir`` (resuming if it holds a checkpoint), evaluating.

  Returns:
    The final summary, also written to ``workdir/metrics.json``.
  """
  t_start = time.time()
  splits = []
  if evaluate_during:
    splits = list(config.eval.splits)
    if config.eval_every_steps > 0 or config.eval_every_epochs > 0:
      splits.append(config.eval.split_during_training)
  run = _Run(config, workdir, eval_splits=splits)
  try:
    summary = _train(run, evaluate_during)
  finally:  # also on errors: pending checkpoint writes complete, metrics are flushed
    run.close()
  summary['wall_seconds'] = time.time() - t_start
  if sharding.is_main_process():
    reporting.write_json(wd.join(workdir, wd.METRICS), summary)
  return summary


def _train(run: '_Run', evaluate_during: bool) -> Dict:
  """The training loop of :func:`train_and_evaluate`."""
  config, workdir = run.config, run.workdir
  state, source = run.initial_state()
  state_shardings = jax.tree.map(lambda x: x.sharding, state)
  p_train, p_eval = steps.jit_steps(config, run.mesh, state_shardings, run.info)
  start = int(state.step)
  logging.info('starting at step %d of %d from %s; %s; %s', start, run.num_train_steps, source,
               optim.describe(state.params, config), sharding.describe(state_shardings))
  if start == 0:
    run.writer.write_hparams({k: v for k, v in flax.traverse_util.flatten_dict(
        config.to_dict(), sep='.').items() if isinstance(v, (int, float, str, bool))})

  pi, pc = sharding.process_split()
  it = input_pipeline.create_train_iterator(config, start_step=start, process_index=pi,
                                            process_count=pc, info=run.info)
  hooks = [periodic_actions.ReportProgress(num_train_steps=run.num_train_steps,
                                           writer=run.writer.writer,
                                           every_steps=config.log_every_steps)]
  if config.profile_steps and sharding.is_main_process():
    hooks.append(periodic_actions.Profile(logdir=workdir, num_profile_steps=config.profile_steps,
                                          first_profile=start + config.profile_first_step,
                                          every_secs=None))
  run.stop.install()
  train_rng = jax.random.fold_in(run.rng, 1)
  pending, window, step_times = [], [], []
  last_good, results, t_window, first_window = start, {}, time.time(), True
  every = run_config.eval_every(config, run.steps_per_epoch) if evaluate_during else 0
  validation = [p for p in reporting.read_validation(workdir) if p['step'] <= start]
  if every:
    run.best = checkpoints.BestCheckpoint(workdir, config, run.info.num_classes,
                                          run_config.best_metric(config),
                                          evaluation.METRICS[config.eval.best_metric])

  def drain(step):  # fetch pending step metrics; stop on a non-finite loss
    nonlocal pending
    fetched = jax.device_get(pending)
    pending = []
    bad = [m for m in fetched if m['nonfinite'] > 0]
    if bad:
      run.ckpt.manager.wait_until_finished()
      raise FloatingPointError(
          f'non-finite loss or gradient (loss={bad[0]["loss"]}) by step {step}: stopped; the '
          f'last good checkpoint (step {run.ckpt.latest_step()}) is kept in '
          f'{run.ckpt.directory}. Lower config.optim.learning_rate or set '
          'config.optim.grad_clip_norm')
    window.extend(fetched)

  step = start
  with jax.set_mesh(run.mesh):
    for step in range(start + 1, run.num_train_steps + 1):
      with jax.profiler.StepTraceAnnotation('train', step_num=step):
        batch = sharding.host_to_global(next(it), run.mesh)
        state, metrics = p_train(state, batch, train_rng)
      if step == start + 1:  # compiled by now: return the compiler's freed memory
        host.release_free_memory()
      pending.append(metrics)
      for hook in hooks:
        hook(step)
      last = step == run.num_train_steps
      stop = run.stop.due(step, run.ckpt.manager)
      if step % config.log_every_steps == 0 or last or stop:
        drain(step)
        now = time.time()
        if not first_window:  # the first window includes compilation
          step_times.append((now - t_window) / len(window))
        first_window, t_window = False, now
        summary = {f'train_{k}': float(np.mean([m[k] for m in window])) for k in window[0]
                   if k != 'nonfinite'}
        run.writer.write_scalars(step, summary)
        window = []
        if run.lock:  # process 0: a heartbeat between checkpoints, when one is due
          run.lock.beat()
      if every and (step % every == 0 or last):
        t_eval = time.time()
        with hooks[0].timed('eval', wait_jax_async_dispatch=False):
          point = run.validate(p_eval, state, step)
        validation.append(point)
        if sharding.is_main_process():
          reporting.write_json(wd.join(workdir, VALIDATION_FILE), {'points': validation})
        run.best.save(step, state, point[run_config.best_metric(config)])
        t_window += time.time() - t_eval  # step times exclude evaluation
      if last or stop or step % config.checkpoint.every_steps == 0:
        drain(step)
        if run.ckpt.save(step, state, force=last or stop):
          locking.refresh_for_all(run.lock)
        last_good = step
      if stop:
        logging.warning('stopped at step %d (preemption); resume with the same command', step)
        break
  best_point = None
  if run.best is not None:
    best_step = run.best.best_step()  # orbax's choice (ties: the later step)
    best_point = next((p for p in validation if p['step'] == best_step), None)
  if evaluate_during and step == run.num_train_steps:  # the test protocol, once
    results.update(run.evaluate(p_eval, state, step, config.eval.splits))
  return _summary(run, state, source=source, eval=results, last_checkpoint=last_good,
                  validation=validation, best_validation=best_point,
                  best_metric=run_config.best_metric(config),
                  train_step_seconds=float(np.median(step_times)) if step_times else None,
                  finished=step == run.num_train_steps,
                  stop_signal=None if step == run.num_train_steps else run.stop.signal)


def run_mode(config, workdir: str, mode: str) -> Dict:
  """``main.py``'s dispatch: ``train`` | ``evaluate`` | ``train_and_evaluate``."""
  if mode not in MODES:
    raise ValueError(f'--mode={mode!r} is not one of {list(MODES)}')
  try:
    if mode == 'evaluate':
      return evaluate(config, workdir)
    return train_and_evaluate(config, workdir, evaluate_during=mode == 'train_and_evaluate')
  except (readers.BadRecordError, locking.LockLost) as e:
    raise RunError(str(e)) from None
  except Exception as e:  # pylint: disable=broad-except
    full = wd.disk_full(e, workdir)
    if full:
      raise RunError(full) from None
    raise
