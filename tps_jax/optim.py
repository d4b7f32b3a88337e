"""The optimizer of ``config.optim``: AdamW, warm-up + cosine, decay masks, lr multipliers.

The official TPS recipe (every released config): AdamW lr 1e-3, betas (0.9, 0.999),
weight decay 0.02 except on norms, biases and relative position tables, backbone lr x0.1
relative to the head, cosine schedule after a 2.5-epoch linear warm-up. (mmcv matches its
``custom_keys`` first-match-by-length, so the released runs in fact also decay the
backbone's norms; we follow the stated recipe.)
"""
import math
import re

import flax
import optax

SCHEDULES = ('cosine', 'constant')


def learning_rate_schedule(config, num_train_steps: int, steps_per_epoch: float) -> optax.Schedule:
  """Linear warm-up from 0 over ``config.optim.warmup_epochs``, then cosine to ``min_lr``.

  Args:
    config: the experiment config (``config.optim``).
    num_train_steps: total optimizer steps of the run.
    steps_per_epoch: optimizer steps per pass over the training set.

  Returns:
    ``step -> learning rate`` of the head (the backbone's is ``backbone_lr_mult`` times it).
  """
  o = config.optim
  if o.schedule not in SCHEDULES:
    raise ValueError(f'config.optim.schedule={o.schedule!r} is not one of {list(SCHEDULES)}')
  warmup = min(int(round(o.warmup_epochs * steps_per_epoch)), max(num_train_steps - 1, 0))
  if o.schedule == 'constant':
    after = optax.constant_schedule(o.learning_rate)
  else:
    after = optax.cosine_decay_schedule(o.learning_rate, max(num_train_steps - warmup, 1),
                                        alpha=o.min_lr / o.learning_rate)
  if warmup == 0:
    return after
  return optax.join_schedules(
      [optax.linear_schedule(0.0, o.learning_rate, warmup), after], [warmup])


def _labels(params, fn):
  flat = flax.traverse_util.flatten_dict(params)
  return flax.traverse_util.unflatten_dict({k: fn('/'.join(k)) for k in flat})


def decay_mask(params, config):
  """True where weight decay applies: every leaf whose name is not in ``no_decay``."""
  pattern = re.compile(config.optim.no_decay)
  return _labels(params, lambda name: not pattern.search(name))


def lr_groups(params, config):
  """``'head'`` for leaves matching ``config.optim.head_regex``, else ``'backbone'``."""
  pattern = re.compile(config.optim.head_regex)
  return _labels(params, lambda name: 'head' if pattern.search(name) else 'backbone')


def create_optimizer(config, schedule: optax.Schedule, params) -> optax.GradientTransformation:
  """AdamW with masks and per-group lr multipliers, optional global-norm clipping.

  The update is ``-lr(t) * mult * (adam + wd * p)``, PyTorch's AdamW with mmcv's
  ``lr_mult`` (decay is scaled by the group's lr, as there).
  """
  o = config.optim
  parts = []
  if o.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(o.grad_clip_norm))
  parts += [
      optax.scale_by_adam(b1=o.b1, b2=o.b2, eps=o.eps),
      optax.add_decayed_weights(o.weight_decay, mask=decay_mask(params, config)),
      optax.scale_by_learning_rate(schedule),
      optax.multi_transform(
          {'backbone': optax.scale(o.backbone_lr_mult), 'head': optax.identity()},
          lr_groups(params, config)),
  ]
  return optax.chain(*parts)


def describe(params, config) -> str:
  """A log line: how many parameters decay and how many get the backbone multiplier."""
  flat = flax.traverse_util.flatten_dict(params)
  mask = flax.traverse_util.flatten_dict(decay_mask(params, config))
  groups = flax.traverse_util.flatten_dict(lr_groups(params, config))
  size = lambda k: math.prod(flat[k].shape)
  decayed = sum(size(k) for k in flat if mask[k])
  head = sum(size(k) for k in flat if groups[k] == 'head')
  total = sum(size(k) for k in flat)
  return (f'{total:,} parameters: {decayed:,} with weight decay, {head:,} in the head '
          f'(lr x1), {total - head:,} in the backbone (lr x{config.optim.backbone_lr_mult})')
