"""A tiny config for tests: 2 steps of a one-stage TPS on ``reversal_pairs/tiny`` (8 x 28 px).

    python main.py --config=configs/test.py --workdir=/tmp/tps_test \
        --config.dataset.data_dir=/tmp/tfds

Runs in seconds on a CPU; it checks plumbing, not accuracy.
"""
from configs import base


def get_config(arch: str = 'tps'):
  config = base.get_config('synthetic_tiny', arch, 'tiny')
  m = config.model
  m.embed_dim, m.depths, m.num_heads = 8, (2,), (1,)  # a channel- and a patch-shift block
  m.patch_size = (2, 4, 4)
  if arch == 'video_swin':
    m.window_size = (2, 7, 7)
  m.bias = 'official' if arch == 'tps' else 'relative'
  config.batch_size = config.eval_batch_size = 4
  config.num_train_steps = 2
  config.optim.warmup_epochs = 0.0
  config.log_every_steps = 1
  config.checkpoint.every_steps = 1
  config.checkpoint.asynchronous = False
  config.profile_steps = 0
  return config
