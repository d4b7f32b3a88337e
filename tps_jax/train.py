"""Training and evaluation: the train/eval steps and the loops around them.

``train_step`` and ``eval_step`` are pure module-level functions, jitted once with
NamedSharding in/out shardings (:func:`jit_steps`), so they run unchanged on one device,
a fake CPU mesh or a multi-host pod. Every number comes from the config.

Restore order (big_vision's): the workdir's latest checkpoint, else ``config.init_from``
(another run's workdir, a converted official checkpoint or inflated ImageNet Swin
weights), else scratch; the paper's configs (``config.init_required``) refuse to start from
random weights unless ``config.init_from='scratch'`` says so. ``WORKDIR/init.json`` keeps
where the weights came from, so a resumed run still reports it.

While training, the eval split is validated every ``config.eval_every_epochs`` with the
cheap protocol (``config.eval.val_num_clips`` x ``val_num_crops`` views: one centre crop of
one clip, as the official ``evaluation = dict(interval=5)``); the best state by val top-1
is kept in ``WORKDIR/checkpoints_best``. The test protocol runs once, at the end.
"""
import copy
import dataclasses
import errno
import functools
import json
import math
import os
import re
import shutil
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from absl import logging
from clu import periodic_actions
import flax
import flax.linen as nn
from flax.training import train_state
import jax
import jax.numpy as jnp
import numpy as np
import optax

import input_pipeline
from input_pipeline import readers
from tps_jax import augment as augment_lib
from tps_jax import checkpoints
from tps_jax import evaluation
from tps_jax import host
from tps_jax import inference
from tps_jax import locking
from tps_jax import mixing
from tps_jax import models
from tps_jax import optim
from tps_jax import reporting
from tps_jax import sharding
from tps_jax import workdir as wd

MODES = ('train', 'evaluate', 'train_and_evaluate')
INIT_FILE = wd.INIT              # where the weights of step 0 came from
VALIDATION_FILE = wd.VALIDATION  # the validation points, kept across resumes
QUOTES = '"\''  # KeyError messages come quoted


def _first_line(e: BaseException) -> str:
  text = str(e).strip().splitlines()
  return f'{type(e).__name__}: {text[0] if text else ""}'[:300]


class SetupError(ValueError):
  """A config, workdir or path that cannot work, found before anything is compiled."""


class RunError(RuntimeError):
  """A failure during the run with a one-line cause (e.g. the disk is full)."""


class TrainState(train_state.TrainState):
  """Flax's TrainState (step, params, opt_state; apply_fn, tx static) plus two statics."""
  num_classes: int = flax.struct.field(pytree_node=False, default=0)
  lr_fn: Callable[[Any], Any] = flax.struct.field(pytree_node=False, default=None)


def clip_shape(config) -> Tuple[int, int, int, int]:
  """``(T, H, W, 3)`` of one training clip."""
  return (config.input.num_frames, config.input.image_size, config.input.image_size, 3)


def check_config(config) -> None:
  """Every check that needs no data and no compilation; a one-line ValueError each."""
  for field in ('batch_size', 'eval_batch_size', 'input.num_frames', 'input.image_size',
                'input.eval_image_size', 'checkpoint.every_steps', 'checkpoint.keep',
                'log_every_steps'):
    section, _, name = field.rpartition('.')
    value = (config[section] if section else config)[name]
    if value <= 0:
      raise ValueError(f'config.{field}={value} must be positive')
  for field in ('input.image_size', 'input.eval_image_size'):
    size = config.input[field.split('.')[1]]
    models.validate(config.model, config.input.num_frames, size)
    if size < max(config.model.patch_size[1:]):
      raise ValueError(f'config.{field}={size} is smaller than one patch '
                       f'(config.model.patch_size={tuple(config.model.patch_size)})')
  if config.num_train_steps <= 0 and config.num_epochs <= 0:
    raise ValueError(f'config.num_epochs={config.num_epochs} must be positive (or set '
                     'config.num_train_steps > 0)')
  if config.optim.grad_accum_steps < 1 or config.batch_size % config.optim.grad_accum_steps:
    raise ValueError(f'config.batch_size={config.batch_size} is not divisible by '
                     f'config.optim.grad_accum_steps={config.optim.grad_accum_steps}')
  sharding.local_batch_size(config.batch_size // config.optim.grad_accum_steps,
                            'config.batch_size / config.optim.grad_accum_steps')
  sharding.local_batch_size(config.eval_batch_size, 'config.eval_batch_size')
  if config.input.augment_on not in AUGMENT_ON:
    raise ValueError(f'config.input.augment_on={config.input.augment_on!r} is not one of '
                     f'{list(AUGMENT_ON)}')
  if config.optim.schedule not in optim.SCHEDULES:
    raise ValueError(f'config.optim.schedule={config.optim.schedule!r} is not one of '
                     f'{list(optim.SCHEDULES)}')
  optim.check_rules(config)


SCRATCH = 'scratch'  # config.init_from value: random weights, on purpose


def init_path(config) -> str:
  """The path of ``config.init_from``, or '' (not set, or ``scratch``)."""
  return '' if config.init_from in ('', SCRATCH) else config.init_from


def check_init(config) -> None:
  """A run from step 0 of a paper config must say where its weights come from."""
  if config.init_required and not config.init_from:
    raise ValueError(
        f'config.init_from is not set, but every {config.dataset.name} number of the paper '
        'fine-tunes pretrained weights: pass --config.init_from=PATH (a K400 workdir or '
        'checkpoint, or an ImageNet Swin .pth) or --config.init_from=scratch to train from '
        'random weights (README: "Reproducing the paper")')


def validation_config(config):
  """``config`` with the cheap validation views (``config.eval.val_num_clips/crops``)."""
  val = copy.deepcopy(config)
  val.input.test_num_clips = config.eval.val_num_clips
  val.input.test_num_crops = config.eval.val_num_crops
  return val


def eval_every(config, steps_per_epoch: float) -> int:
  """Steps between validations: ``eval_every_steps``, else from ``eval_every_epochs``."""
  if config.eval_every_steps > 0:
    return config.eval_every_steps
  if config.eval_every_epochs <= 0:
    return 0
  return max(int(round(config.eval_every_epochs * steps_per_epoch)), 1)


def schedule_steps(config, num_train_examples: int) -> Tuple[int, float]:
  """``(num_train_steps, steps_per_epoch)``: ``config.num_train_steps`` or from epochs."""
  steps_per_epoch = num_train_examples / config.batch_size
  if config.num_train_steps > 0:
    return config.num_train_steps, steps_per_epoch
  return int(math.ceil(config.num_epochs * steps_per_epoch)), steps_per_epoch


def create_train_state(config, model, rng, *, mesh=None, params=None,
                       num_train_steps: Optional[int] = None,
                       steps_per_epoch: Optional[float] = None,
                       abstract: bool = False) -> TrainState:
  """A TrainState whose parameters and optimizer state are born sharded.

  Args:
    config: the experiment config.
    model: ``tps_jax.models.build_model(config.model, num_classes)``.
    rng: PRNG key of the parameter initialisation.
    mesh: device mesh; when given, the state is created by ``jit`` with the
      ``sharding.tree_shardings`` out shardings (FSDP-split where the rules say so).
    params: start from these parameters (e.g. ``config.init_from``) instead of ``model.init``.
    num_train_steps, steps_per_epoch: length of the lr schedule; default
      ``config.num_train_steps`` and that many steps per epoch.
    abstract: return ``jax.ShapeDtypeStruct`` leaves carrying their shardings (the
      target of a checkpoint restore) and compute nothing.

  Returns:
    The (possibly abstract) TrainState.
  """
  num_train_steps = num_train_steps or max(config.num_train_steps, 1)
  steps_per_epoch = steps_per_epoch or num_train_steps / max(config.num_epochs, 1e-9)
  clip = jnp.zeros((1,) + clip_shape(config), jnp.float32)
  init_params = lambda r: model.init(r, clip, train=False)['params']
  abstract_params = jax.eval_shape(init_params, rng)
  lr_fn = optim.learning_rate_schedule(config, num_train_steps, steps_per_epoch)
  tx = optim.create_optimizer(config, lr_fn, abstract_params)

  def init(r, p):
    p = init_params(r) if p is None else p
    return TrainState.create(apply_fn=model.apply, params=p, tx=tx,
                             num_classes=model.num_classes, lr_fn=lr_fn)

  shapes = jax.eval_shape(init, rng, params)
  if mesh is None:
    if abstract:
      return shapes
    return jax.jit(init)(rng, params)
  shardings = sharding.tree_shardings(shapes, mesh, config)
  if abstract:
    return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                        shapes, shardings)
  if params is not None:  # host arrays: place them once, in their target shardings
    params = jax.device_put(params, shardings.params)
  with jax.set_mesh(mesh):
    return jax.jit(init, out_shardings=shardings)(rng, params)


def _forward_loss(params, state, video, targets, labels, rng):
  logits, _ = state.apply_fn({'params': params}, video, train=True, rngs={'dropout': rng})
  loss = optax.softmax_cross_entropy(logits.astype(jnp.float32), targets).mean()
  correct = jnp.mean(jnp.argmax(logits, -1) == labels)
  return loss, correct


def soft_targets(labels: jax.Array, num_classes: int, smoothing: float) -> jax.Array:
  """One-hot targets with label smoothing (mmaction's: ``(1 - e) * onehot + e / K``)."""
  return jax.nn.one_hot(labels, num_classes) * (1.0 - smoothing) + smoothing / num_classes


AUGMENT_STREAM = 0x61756700  # folded into the step's key for the clips' augmentation


def train_step(state: TrainState, batch: Dict[str, jax.Array], rng: jax.Array, *,
               config, augment: Optional[Callable] = None
               ) -> Tuple[TrainState, Dict[str, jax.Array]]:
  """One optimizer step: (device augmentation,) mixup/cutmix, label smoothing, grads, AdamW.

  Args:
    state: the TrainState.
    batch: ``{'video': (B, T, H, W, 3) float32, 'label': (B,) int32}`` (global batch);
      uint8 crops with ``augment``.
    rng: the run's base key; the step's dropout / drop-path / mixing / augmentation keys
      are folded from it and ``state.step``, so a resumed run draws the same randomness.
    config: the experiment config (static: bind with ``functools.partial``).
    augment: ``(keys (B, 2), video, label) -> (video, label)``, one key per clip
      (:func:`device_augment`); None when the host augmented (``config.input.augment_on``).

  Returns:
    ``(new_state, metrics)``; a step with a non-finite loss or gradient leaves params and
    optimizer state unchanged and reports ``nonfinite=1`` (the loop then stops).
  """
  rng = jax.random.fold_in(rng, state.step)
  mix_rng, drop_rng = jax.random.split(rng)
  video, labels = batch['video'], batch['label']
  if augment is not None:  # one key per clip of the global batch: the mesh does not matter
    keys = jax.random.split(jax.random.fold_in(rng, AUGMENT_STREAM), video.shape[0])
    video, labels = augment(keys, video, labels)
  targets = soft_targets(labels, state.num_classes, config.loss.label_smoothing)
  video, targets = mixing.mix_batch(mix_rng, video, targets, config)
  grad_fn = jax.value_and_grad(_forward_loss, has_aux=True)
  k = config.optim.grad_accum_steps
  with nn.logical_axis_rules(sharding.logical_rules(config)):
    if k == 1:
      (loss, acc), grads = grad_fn(state.params, state, video, targets, labels, drop_rng)
    else:  # k micro-batches in a scan: the memory of one, the gradient of all
      micro = lambda x: x.reshape((k, x.shape[0] // k) + x.shape[1:])
      def body(carry, xs):
        i, v, t, l = xs
        (loss_i, acc_i), g = grad_fn(state.params, state, v, t, l, jax.random.fold_in(drop_rng, i))
        return jax.tree.map(jnp.add, carry, (loss_i, acc_i, g)), None
      zeros = (0.0, 0.0, jax.tree.map(jnp.zeros_like, state.params))
      (loss, acc, grads), _ = jax.lax.scan(
          body, zeros, (jnp.arange(k), micro(video), micro(targets), micro(labels)))
      loss, acc, grads = loss / k, acc / k, jax.tree.map(lambda g: g / k, grads)
  grad_norm = optax.tree.norm(grads)
  updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
  new_state = state.replace(step=state.step + 1, params=keep(params, state.params),
                            opt_state=keep(opt_state, state.opt_state))
  metrics = {'loss': loss, 'accuracy': acc, 'grad_norm': grad_norm,
             'param_norm': optax.tree.norm(state.params),
             'learning_rate': state.lr_fn(state.step),
             'nonfinite': 1.0 - finite.astype(jnp.float32)}
  return new_state, metrics


def eval_step(state: TrainState, batch: Dict[str, jax.Array], *, config) -> Dict[str, jax.Array]:
  """Per-video scores averaged over the test views (the official protocol).

  Args:
    state: the TrainState (only its ``apply_fn`` and ``params`` are read).
    batch: ``{'video': (B, V, T, H, W, 3)}``; V = clips x crops views of each video.
    config: the experiment config (see :func:`tps_jax.inference.scores`).

  Returns:
    ``{'probs': (B, K) mean softmax over views, 'logits': (B, K) mean logits}``, plus
    the batch's ``label`` and ``mask`` when present.
  """
  out = inference.scores(state.apply_fn, state.params, batch['video'], config=config)
  out.update({k: batch[k] for k in ('label', 'mask') if k in batch})  # passed through
  return out


AUGMENT_ON = ('host', 'device')  # config.input.augment_on


def device_augment(config, mesh, info) -> Optional[Callable]:
  """The train step's ``augment`` for ``config.input.augment_on='device'``, else None.

  Each device augments its own clips (``sharding.per_example``), one after another
  (``lax.map``): each clip pays only for the ops it drew (a ``lax.switch`` under ``vmap``
  would run all 15 RandAugment ops on every clip).
  """
  if config.input.augment_on == 'host':
    return None
  spec = augment_lib.spec_from_config(config.input, tuple(int(k) for k in info.flip_label_map),
                                      tuple(int(k) for k in info.no_flip_classes))

  def clips(keys, video, label):
    return jax.lax.map(lambda a: augment_lib.augment_clip(*a, spec), (keys, video, label))
  return sharding.per_example(clips, mesh)


def jit_steps(config, mesh, state_shardings, info=None):
  """``(train_step, eval_step)`` jitted with NamedShardings (state donated to the step).

  ``info`` (the data set's): its flip rules, for ``config.input.augment_on='device'``.
  """
  batch = sharding.batch_sharding(mesh)
  repl = sharding.replicated(mesh)
  augment = device_augment(config, mesh, info) if info is not None else None
  if augment is None and config.input.augment_on == 'device':
    raise ValueError("config.input.augment_on='device' needs the data set's info")
  p_train = jax.jit(functools.partial(train_step, config=config, augment=augment),
                    in_shardings=(state_shardings, batch, repl),
                    out_shardings=(state_shardings, repl), donate_argnums=(0,))
  p_eval = jax.jit(functools.partial(eval_step, config=config),
                   in_shardings=(state_shardings, batch), out_shardings=batch)
  return p_train, p_eval


def evaluate_split(p_eval, state, config, mesh, info, split: str, *,
                   keep_predictions: bool = False) -> evaluation.Accumulator:
  """Runs ``p_eval`` over a whole split (this process's part, padded batches masked)."""
  pi, pc = sharding.process_split()
  acc = evaluation.Accumulator(info.num_classes, keep_predictions)
  progress = _EvalProgress(split, math.ceil(info.num_examples.get(split, 0) /
                                            config.eval_batch_size))
  for batch in input_pipeline.create_eval_iterator(config, split, process_index=pi,
                                                   process_count=pc, info=info):
    progress.update()
    ids = batch.pop('id')  # strings stay on the host
    out = sharding.global_to_host(p_eval(state, sharding.host_to_global(batch, mesh)))
    if keep_predictions and pc > 1:  # the global batch's ids, in the order of `out`
      ids = evaluation.decode_ids(sharding.global_to_host(
          sharding.host_to_global(evaluation.encode_ids(ids), mesh)))
    acc.update(out['probs'], out['label'], out['mask'], out['logits'], ids=ids)
  return acc


EVAL_PROGRESS_SECONDS = 10.0  # an evaluation logs where it is this often (minutes on CPU)


class _EvalProgress:
  """Logs ``batch i/n`` and the time left every :data:`EVAL_PROGRESS_SECONDS`."""

  def __init__(self, split: str, total: int):
    self.split, self.total, self.done = split, total, 0
    self.start = self.last = time.monotonic()

  def update(self) -> None:
    """Called before each batch: the time of the batches done so far gives the ETA."""
    now = time.monotonic()
    if self.done and now - self.last >= EVAL_PROGRESS_SECONDS:
      self.last = now
      eta = (now - self.start) / self.done * max(self.total - self.done, 0)
      logging.info('evaluating %s: batch %d/%d, %.1f s/batch, ETA %.0f s', self.split,
                   self.done + 1, self.total, (now - self.start) / self.done, eta)
    self.done += 1


def split_name(config, split: str) -> str:
  """A role of ``config.dataset.splits`` ('train', 'eval', 'test') or a literal split name."""
  return config.dataset.splits[split] if split in config.dataset.splits else split


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
      check_config(config)
      self.mesh = sharding.make_mesh(config)
      wd.check_storage(workdir)
      if init_path(config):
        wd.check_storage(config.init_from, 'config.init_from')
      if config.dataset.data_dir:
        wd.check_storage(config.dataset.data_dir, 'config.dataset.data_dir')
      if init_path(config) and not wd.exists(config.init_from):
        raise FileNotFoundError(f'config.init_from: no such checkpoint: {config.init_from}')
      checkpoints.check_workdir(workdir, config)
      if not evaluate_only:
        checkpoints.check_no_silent_restart(workdir, config)
      if not evaluate_only and not checkpoints.is_checkpoint_dir(workdir):
        check_init(config)  # before the data set is prepared
      ckpt_dir = wd.join(wd.resolve(workdir), wd.CHECKPOINTS)
      if evaluate_only and not init_path(config) and not checkpoints.committed_steps(ckpt_dir):
        raise ValueError(f'nothing to evaluate: no checkpoint in {ckpt_dir} and no '
                         'config.init_from')
      self.info = input_pipeline.get_dataset_info(config)
      _check_not_empty(config, self.info, eval_splits)
      train_examples = self.info.num_examples[config.dataset.splits.train]
      if not evaluate_only and schedule_steps(config, train_examples)[0] <= 0:
        raise ValueError(f'{config.dataset.name} {config.dataset.splits.train}: '
                         f'{train_examples} examples x config.num_epochs={config.num_epochs} '
                         'make no training step')
      wd.makedirs(self.reports)
      if not evaluate_only:  # process 0 locks for all: the others are the same run
        self.lock = _lock(workdir, config)
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
    self.num_train_steps, self.steps_per_epoch = schedule_steps(
        config, self.info.num_examples[config.dataset.splits.train])
    self.rng = jax.random.key(config.seed)
    self.init: Dict[str, Any] = {}
    self.best: Optional[checkpoints.BestCheckpoint] = None  # created by training

  def initial_state(self) -> Tuple[TrainState, str]:
    """The state to start from and where it came from (restore order of the docstring)."""
    kw = dict(mesh=self.mesh, num_train_steps=self.num_train_steps,
              steps_per_epoch=self.steps_per_epoch)
    init_rng = jax.random.fold_in(self.rng, 0)
    init_file = wd.join(self.workdir, INIT_FILE)
    if self.ckpt.latest_step() is not None:
      target = create_train_state(self.config, self.model, init_rng, abstract=True, **kw)
      try:
        state, step = self.ckpt.restore_latest(target)
      except ValueError as e:
        raise SetupError(str(e)) from None
      if step is not None:
        if wd.isfile(init_file):
          self.init = json.loads(wd.read_text(init_file))
        return state, f'checkpoint step {step} in {self.ckpt.directory}'
    if init_path(self.config):
      from tps_jax import weights  # pylint: disable=g-import-not-at-top
      try:
        params, report = weights.load_params(
            self.config.init_from, self.config.model, self.info.num_classes, rng=init_rng)
      except (FileNotFoundError, ValueError, KeyError, ImportError) as e:  # they name the path
        raise SetupError(f'config.init_from: {str(e).strip(QUOTES)}') from None
      state = create_train_state(self.config, self.model, init_rng, params=params, **kw)
      source, self.init = report.describe(), dataclasses.asdict(report)
    else:
      state = create_train_state(self.config, self.model, init_rng, **kw)
      source = 'scratch (random weights' + (', config.init_from=scratch)'
                                            if self.config.init_from else ')')
      self.init = {'kind': 'scratch', 'source': self.config.init_from}
    self.init['description'] = source
    if sharding.is_main_process():
      reporting.write_json(init_file, self.init)
    return state, source

  def evaluate(self, p_eval, state, step: int, splits) -> Dict[str, Dict]:
    results = {}
    for split in map(functools.partial(split_name, self.config), splits):
      t0 = time.time()
      acc = evaluate_split(p_eval, state, self.config, self.mesh, self.info, split,
                           keep_predictions=self.config.eval.write_predictions)
      if sharding.is_main_process():
        report = evaluation.write_report(self.reports, split, acc, self.info.class_names, step)
        results[split] = {k: report[k] for k in ('top1', 'top5', 'mean_class_accuracy',
                                                 'loss', 'count')}
        results[split]['seconds'] = time.time() - t0
      if not self.evaluate_only:  # the training's curve; --mode=evaluate adds no rows to it
        self.writer.write_scalars(step, {f'eval_{split}_{k}': v
                                         for k, v in acc.result().items() if k != 'count'})
    self.writer.flush()
    return results

  def validate(self, p_eval, state, step: int) -> Dict[str, float]:
    """The cheap validation of ``config.eval.split_during_training``: scalars ``val_*``."""
    config = validation_config(self.config)
    split = split_name(config, config.eval.split_during_training)
    t0 = time.time()
    result = evaluate_split(p_eval, state, config, self.mesh, self.info, split).result()
    point = {f'val_{k}': float(result[k]) for k in ('top1', 'top5', 'loss')}
    self.writer.write_scalars(step, point)
    self.writer.flush()
    point.update(step=int(step), epoch=step / self.steps_per_epoch,
                 seconds=time.time() - t0)
    logging.info('validation at step %d (epoch %.2f, %s, %d view(s)): top-1 %.4f, top-5 %.4f, '
                 'loss %.4f', step, point['epoch'], split, config.input.test_num_clips *
                 config.input.test_num_crops, point['val_top1'], point['val_top5'],
                 point['val_loss'])
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
            logging.warning('curves not drawn: %s', _first_line(e))
      finally:
        if self.lock:
          self.lock.release()


def _check_not_empty(config, info, splits: Sequence[str]) -> None:
  """An empty split would report top-1 0.0 and pick a best checkpoint from nothing."""
  for split in map(functools.partial(split_name, config), splits):
    if info.num_examples.get(split) == 0:
      raise ValueError(f'{config.dataset.name} {split}: the split is empty (0 examples), '
                       'nothing to evaluate: fix the data, or config.eval.splits / '
                       'config.eval.split_during_training')


def _lock(workdir: str, config):
  """Process 0 takes the workdir's lock; every process stops with its refusal, if any."""
  lock, refusal = None, ''
  if sharding.is_main_process():
    try:
      lock = locking.acquire(workdir, config.checkpoint.lock_lease_minutes * 60)
    except ValueError as e:
      refusal = str(e)
    except Exception as e:  # pylint: disable=broad-except  (the others must not wait forever)
      refusal = f'{workdir}: could not take the lock ({type(e).__name__}: {e})'.split('\n')[0]
  refusal = sharding.main_process_says(refusal)
  if refusal:
    raise ValueError(refusal)
  return lock


def _refresh_lock(lock) -> None:
  """Renews the lock's heartbeat (at each checkpoint); all processes stop if it was lost."""
  lost = ''
  if lock is not None:
    try:
      lock.refresh()
    except ValueError as e:
      lost = str(e)
  lost = sharding.main_process_says(lost)
  if lost:
    raise RunError(lost)


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
    _, p_eval = jit_steps(config, run.mesh, jax.tree.map(lambda x: x.sharding, state))
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
  p_train, p_eval = jit_steps(config, run.mesh, state_shardings, run.info)
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
  run.ckpt.install_sigterm_handler()
  train_rng = jax.random.fold_in(run.rng, 1)
  pending, window, step_times = [], [], []
  last_good, results, t_window, first_window = start, {}, time.time(), True
  every = eval_every(config, run.steps_per_epoch) if evaluate_during else 0
  validation = [p for p in _read_validation(workdir) if p['step'] <= start]
  if every:
    run.best = checkpoints.BestCheckpoint(workdir, config, run.info.num_classes)

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
      stop = run.ckpt.should_stop(step)
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
        run.best.save(step, state, point['val_top1'])
        t_window += time.time() - t_eval  # step times exclude evaluation
      if last or stop or step % config.checkpoint.every_steps == 0:
        drain(step)
        if run.ckpt.save(step, state, force=last or stop):
          _refresh_lock(run.lock)
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
                  train_step_seconds=float(np.median(step_times)) if step_times else None,
                  finished=step == run.num_train_steps,
                  stop_signal=None if step == run.num_train_steps else run.ckpt.stop_signal)


def _read_validation(workdir: str):
  """The validation points of earlier sessions of this run (resume keeps its curve)."""
  path = wd.join(workdir, VALIDATION_FILE)
  if not wd.isfile(path):
    return []
  try:
    points = json.loads(wd.read_text(path))['points']
    if not all(isinstance(p, dict) and isinstance(p.get('step'), int) for p in points):
      raise ValueError('a point without an integer step')
    return points
  except (ValueError, TypeError, KeyError) as e:  # a write cut short, an edit
    history = reporting.read_history(workdir)
    by_step = {}
    for name in ('val_top1', 'val_top5', 'val_loss'):
      for step, value in history.get(name, []):
        by_step.setdefault(step, {'step': step})[name] = value
    logging.warning('%s is damaged (%s): its %d points rebuilt from %s', path,
                    str(e).splitlines()[0][:100], len(by_step), wd.HISTORY)
    return [by_step[s] for s in sorted(by_step)]


def run_mode(config, workdir: str, mode: str) -> Dict:
  """``main.py``'s dispatch: ``train`` | ``evaluate`` | ``train_and_evaluate``."""
  if mode not in MODES:
    raise ValueError(f'--mode={mode!r} is not one of {list(MODES)}')
  try:
    if mode == 'evaluate':
      return evaluate(config, workdir)
    return train_and_evaluate(config, workdir, evaluate_during=mode == 'train_and_evaluate')
  except readers.BadRecordError as e:
    raise RunError(str(e)) from None
  except Exception as e:  # pylint: disable=broad-except
    full = disk_full(e, workdir)
    if full:
      raise RunError(full) from None
    raise


def disk_full(error: BaseException, workdir: str) -> Optional[str]:
  """One line (which file, how much space is left) when ``error`` comes from a full disk."""
  if wd.is_url(workdir):  # object stores do not fill up
    return None
  while error is not None:
    if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or (
        'No space left on device' in str(error)):
      quoted = re.search(r'"(/[^"]+)"', str(error))  # tensorstore names the file in quotes
      where = getattr(error, 'filename', None) or (quoted and quoted.group(1)) or workdir
      where_dir = where if os.path.isdir(where) else os.path.dirname(os.path.abspath(where))
      try:
        free = shutil.disk_usage(where_dir or workdir).free
      except OSError:
        free = shutil.disk_usage(workdir).free if os.path.exists(workdir) else 0
      need = re.search(r'a checkpoint needs [0-9.]+ MiB', str(error))  # checkpoints.check_room
      return (f'disk full: writing {where} failed with {free / 2**20:.1f} MiB free there'
              f'{f" ({need.group(0)})" if need else ""}; free some space and rerun the same '
              'command (it resumes from the last committed checkpoint)')
    error = error.__cause__ or error.__context__
  return None
