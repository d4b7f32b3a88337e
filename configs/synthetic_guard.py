"""The CI guard: the demo's model and recipe, shortened, on ``reversal_pairs/mini``.

    python main.py --config=configs/synthetic_guard.py --workdir=/tmp/guard
    python main.py --config=configs/synthetic_guard.py:swin2d --workdir=/tmp/guard_2d
    python main.py --config=configs/synthetic_guard.py:tps,latin3 ...   # another mosaic

The demo (``synthetic_tps.py``) at a fraction of its cost: the same model and optimizer
on 8 frames of 32x32 rendered at that size (2000 training clips, nothing to decode and
resize), for ``GUARD_STEPS`` steps instead of 2000 (about 2.5 min on 2 CPU cores). ``tests/guard_test.py`` trains it at a fixed seed and asserts that TPS tells the
direction of time apart by the margin measured over seeds (``docs/guard.md``, written by
``scripts/synthetic_results.py --table=guard``); a frame-order-blind model cannot.
"""
from configs import data_table
from configs import model_table
from configs import synthetic_tps

GUARD_STEPS = 600


def get_config(arg: str = 'tps'):
  """``arg``: an arch, or ``arch,pattern`` with a name of ``model_table.PATTERNS``."""
  arch, _, pattern = arg.partition(',')
  config = synthetic_tps.get_config(arch)
  if pattern:
    if pattern not in model_table.PATTERNS:
      raise ValueError(f'synthetic_guard: pattern {pattern!r} is not one of '
                       f'{sorted(model_table.PATTERNS)}')
    config.model.shift_pattern = model_table.PATTERNS[pattern]
  config.dataset = data_table.dataset_config('synthetic_mini')
  config.input = data_table.input_config('synthetic_mini')
  config.num_train_steps = GUARD_STEPS
  config.optim.learning_rate = 3e-3    # twice the demo's, for a third of its steps
  config.optim.warmup_epochs = 0.8     # 50 steps of 62.5 per epoch (2000 clips / 32)
  config.eval_every_steps = 0          # only the final evaluation
  config.eval_every_epochs = 0.0
  config.checkpoint.every_steps = GUARD_STEPS
  config.profile_steps = 0
  return config
