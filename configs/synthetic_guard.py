"""The CI guard: the demo's model and recipe, shortened, on ``reversal_pairs/mini``.

    python main.py --config=configs/synthetic_guard.py --workdir=/tmp/guard
    python main.py --config=configs/synthetic_guard.py:swin2d --workdir=/tmp/guard_2d
    python main.py --config=configs/synthetic_guard.py:tps,latin3 ...   # another mosaic

The demo (``synthetic_tps.py``) at a fraction of its cost: the same model and optimizer
on 8 frames of 16x16 (``reversal_pairs/mini``, 2000 training clips rendered at 32x32),
i.e. 4x4 tokens a frame in one 4x4 window, a quarter of the demo's tokens, for
``GUARD_STEPS`` steps (about 2.5 min on 2 CPU cores). At 600 steps on 32x32 the seeds
had not yet learned the direction of time (docs/guard.md), so no margin could be derived. ``tests/guard_test.py`` trains it at a fixed seed and asserts that TPS tells the
direction of time apart by the margin measured over seeds (``docs/guard.md``, written by
``scripts/synthetic_results.py --table=guard``); a frame-order-blind model cannot.
"""
from configs import data_table
from configs import model_table
from configs import synthetic_tps

GUARD_STEPS = 1500


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
  config.model.window_size = (4, 4, 4) if arch == 'video_swin' else (1, 4, 4)
  config.num_train_steps = GUARD_STEPS
  config.optim.learning_rate = 3e-3    # twice the demo's
  config.optim.warmup_epochs = 0.8     # 50 steps of 62.5 per epoch (2000 clips / 32)
  config.eval_every_steps = 0          # only the final evaluation
  config.eval_every_epochs = 0.0
  config.checkpoint.every_steps = GUARD_STEPS
  config.profile_steps = 0
  return config
