"""What a config means for a run, checked before anything is compiled or read.

One-line ValueErrors name the config field; the derived quantities (schedule length,
validation interval, the metric that picks ``checkpoints_best``) are computed here once.
"""
import math
from typing import Tuple

from tps_jax import evaluation
from tps_jax import models
from tps_jax import optim
from tps_jax import sharding
from tps_jax import steps


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
  if config.input.augment_on not in steps.AUGMENT_ON:
    raise ValueError(f'config.input.augment_on={config.input.augment_on!r} is not one of '
                     f'{list(steps.AUGMENT_ON)}')
  if config.optim.schedule not in optim.SCHEDULES:
    raise ValueError(f'config.optim.schedule={config.optim.schedule!r} is not one of '
                     f'{list(optim.SCHEDULES)}')
  optim.check_rules(config)
  if config.eval.best_metric not in evaluation.METRICS:
    raise ValueError(f'config.eval.best_metric={config.eval.best_metric!r} is not one of '
                     f'{list(evaluation.METRICS)}')


def best_metric(config) -> str:
  """The validation scalar that picks ``checkpoints_best``."""
  return f'val_{config.eval.best_metric}'


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
