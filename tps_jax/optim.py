"""The optimizer of ``config.optim``: AdamW, mmcv's warm-up + cosine, per-parameter rules.

The released TPS runs (every official config) use AdamW lr 1e-3, betas (0.9, 0.999),
weight decay 0.02 with mmcv's ``paramwise_cfg.custom_keys`` = ``absolute_pos_embed``,
``relative_position_bias_table``, ``norm`` -> decay x0 and ``backbone`` -> lr x0.1. mmcv's
``DefaultOptimizerConstructor`` tries the keys longest first and the first key that is a
substring of the parameter's name wins, so what the released runs actually did is:
relative position bias tables at lr x1 without decay, every other backbone parameter
(norms and biases included) at lr x0.1 *with* decay 0.02, and the head at lr x1 with decay
(``norm`` never wins: every norm is in the backbone). That is the default rule table
``released``; the recipe as the paper states it (no decay on norms, biases and tables,
whole backbone at x0.1) is ``config.optim.rules='stated'``.

Rules (``config.optim.rule_tables[config.optim.rules]``) are data: ``(pattern, lr_mult,
decay_mult)`` tried in order against the parameter's *official PyTorch name*
(``tps_jax.convert.torch_name``, e.g. ``backbone.layers.0.blocks.1.norm1.weight``) with
``re.search``; the first match wins, no match is ``(1, 1)``. The released table lists
mmcv's keys in mmcv's order (longest first), so plain substrings reproduce its rule.

Schedule (``config.optim.schedule``): ``cosine_by_epoch`` is mmcv's
``CosineAnnealingLrUpdaterHook`` as configured by the released runs (``by_epoch=True``:
the lr is constant within an epoch; ``warmup='linear'`` by iteration over
``warmup_epochs``, starting at ``warmup_ratio`` = 0.1 of the lr, mmcv's default), including
mmcv's hold of the last warm-up value for the rest of the epoch in which a fractional
warm-up ends. ``cosine`` is a per-step cosine after a linear warm-up (the earlier recipe
with ``warmup_ratio=0``); ``constant`` keeps the lr after mmcv's warm-up.
"""
import math
import re
from typing import Dict, List, Tuple

import flax
import jax
import jax.numpy as jnp
import optax

from tps_jax import convert

SCHEDULES = ('cosine_by_epoch', 'cosine', 'constant')


def _total_epochs(config, num_train_steps: int, steps_per_epoch: float) -> float:
  """mmcv's ``max_epochs``: ``config.num_epochs``, or the length of a step-count run."""
  if config.num_train_steps > 0 or steps_per_epoch <= 0:
    return max(num_train_steps / max(steps_per_epoch, 1e-9), 1e-9)
  return config.num_epochs


def learning_rate_schedule(config, num_train_steps: int, steps_per_epoch: float) -> optax.Schedule:
  """``step -> lr`` before the per-parameter ``lr_mult`` (module docstring: the modes).

  Args:
    config: the experiment config (``config.optim``, ``config.num_epochs``).
    num_train_steps: total optimizer steps of the run.
    steps_per_epoch: optimizer steps per pass over the training set (mmcv's epoch
      length; may be fractional here, epochs being ``floor(step / steps_per_epoch)``).

  Returns:
    The schedule, evaluated at the number of updates done so far (mmcv's ``runner.iter``).
  """
  o = config.optim
  if o.schedule not in SCHEDULES:
    raise ValueError(f'config.optim.schedule={o.schedule!r} is not one of {list(SCHEDULES)}')
  lr, ratio = o.learning_rate, o.warmup_ratio
  if o.schedule == 'cosine':  # per step: warm-up, then a cosine over the remaining steps
    warmup = min(int(round(o.warmup_epochs * steps_per_epoch)), max(num_train_steps - 1, 0))
    after = optax.cosine_decay_schedule(lr, max(num_train_steps - warmup, 1),
                                        alpha=o.min_lr / lr)
    if warmup == 0:
      return after
    return optax.join_schedules([optax.linear_schedule(ratio * lr, lr, warmup), after], [warmup])

  warmup = o.warmup_epochs * steps_per_epoch            # mmcv: warmup_iters, a float
  total = _total_epochs(config, num_train_steps, steps_per_epoch)
  # mmcv sets the warm-up lr before each iteration while iter < warmup_iters and returns
  # without touching it afterwards, so when warmup_iters is fractional the value of
  # iteration floor(warmup_iters) holds until the next epoch sets the regular lr.
  last_warm = math.floor(warmup)
  last_warm_epoch = math.floor(last_warm / steps_per_epoch) if steps_per_epoch > 0 else 0

  def schedule(step):
    step = jnp.asarray(step, jnp.float32)
    epoch = jnp.floor(step / steps_per_epoch)
    if o.schedule == 'constant':
      regular = jnp.full_like(step, lr)
    else:  # mmcv annealing_cos(lr, min_lr, epoch / max_epochs)
      regular = o.min_lr + 0.5 * (lr - o.min_lr) * (1 + jnp.cos(math.pi * epoch / total))
    if warmup <= 0:
      return regular
    held = jnp.where((step > warmup) & (epoch == last_warm_epoch), last_warm, step)
    factor = jnp.where(held < warmup, 1 - (1 - held / warmup) * (1 - ratio), 1.0)
    return regular * factor

  return schedule


def check_rules(config) -> List[Tuple[str, float, float]]:
  """The active rule table, checked: a one-line ValueError naming the bad entry."""
  o = config.optim
  if o.rules not in o.rule_tables:
    raise ValueError(f'config.optim.rules={o.rules!r} is not one of '
                     f'{sorted(o.rule_tables.keys())} (config.optim.rule_tables)')
  table = []
  for i, rule in enumerate(o.rule_tables[o.rules]):
    where = f'config.optim.rule_tables.{o.rules}[{i}]={tuple(rule)!r}'
    if len(rule) != 3 or not isinstance(rule[0], str):
      raise ValueError(f'{where}: expected (pattern, lr_mult, decay_mult)')
    try:
      re.compile(rule[0])
    except re.error as e:
      raise ValueError(f'{where}: bad pattern: {e}') from None
    table.append((rule[0], float(rule[1]), float(rule[2])))
  return table


def match_rule(name: str, table) -> Tuple[float, float]:
  """``(lr_mult, decay_mult)`` of the first rule whose pattern is found in ``name``."""
  for pattern, lr_mult, decay_mult in table:
    if re.search(pattern, name):
      return lr_mult, decay_mult
  return 1.0, 1.0


def param_table(params, config) -> Dict[Tuple[str, ...], Tuple[str, float, float]]:
  """``{flax path: (official name, lr_mult, decay_mult)}`` for every parameter."""
  table = check_rules(config)
  out = {}
  for path in flax.traverse_util.flatten_dict(params):
    name = convert.torch_name(path)
    out[path] = (name,) + match_rule(name, table)
  return out


def _trees(params, config):
  table = param_table(params, config)
  lr = flax.traverse_util.unflatten_dict({k: v[1] for k, v in table.items()})
  decay = flax.traverse_util.unflatten_dict({k: v[2] for k, v in table.items()})
  return lr, decay


def create_optimizer(config, schedule: optax.Schedule, params) -> optax.GradientTransformation:
  """AdamW with per-parameter lr and decay multipliers, optional global-norm clipping.

  The update is ``-lr(t) * lr_mult * (adam + weight_decay * decay_mult * p)``: PyTorch's
  AdamW on mmcv's parameter groups (a group's decay is scaled by its lr, as there).
  """
  o = config.optim
  lr_mults, decay_mults = _trees(params, config)
  decay = lambda u, p, d: u if d == 0 else u + (o.weight_decay * d) * p
  parts = []
  if o.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(o.grad_clip_norm))
  parts += [
      optax.scale_by_adam(b1=o.b1, b2=o.b2, eps=o.eps),
      optax.stateless(lambda u, p: jax.tree.map(decay, u, p, decay_mults)),
      optax.scale_by_learning_rate(schedule),
      optax.stateless(lambda u, _: jax.tree.map(lambda x, m: x if m == 1 else x * m,
                                                 u, lr_mults)),
  ]
  return optax.chain(*parts)


def describe(params, config) -> str:
  """A log line: parameter counts per (lr_mult, decay_mult) under the active rules."""
  flat = flax.traverse_util.flatten_dict(params)
  groups: Dict[Tuple[float, float], int] = {}
  for path, (_, lr_mult, decay_mult) in param_table(params, config).items():
    groups[(lr_mult, decay_mult)] = groups.get((lr_mult, decay_mult), 0) + math.prod(
        flat[path].shape)
  total = sum(groups.values())
  parts = ', '.join(f'{n:,} at lr x{lm:g} decay x{dm:g}'
                    for (lm, dm), n in sorted(groups.items(), key=lambda kv: -kv[1]))
  return (f'{total:,} parameters (rules {config.optim.rules!r}, weight decay '
          f'{config.optim.weight_decay:g}): {parts}')
