"""The default run: TPS learns the direction of time on the embedded synthetic set (CPU).

    python main.py --config=configs/synthetic_tps.py --workdir=workdir/synthetic_tps

Generates ``reversal_pairs/small`` (10 classes in time-reversal pairs) on first use, then
trains a small TPS from scratch: on a 2-core CPU in about 10 minutes it should reach
>= 90% validation top-1, where a 2D Swin (``synthetic_swin2d.py``, the same recipe with
frame-independent attention) stays near its 50% ceiling. ``:swin2d`` | ``:tsm`` |
``:video_swin`` after the file name swaps the architecture (``synthetic_*.py``).
"""
from configs import base


def get_config(arch: str = 'tps'):
  config = base.get_config('synthetic', arch, 'tiny')
  m = config.model
  m.embed_dim, m.depths, m.num_heads = 32, (2, 2), (2, 4)
  m.patch_size = (1, 4, 4)          # one frame per token: 2D Swin is truly frame-blind
  if arch == 'video_swin':
    m.window_size = (4, 7, 7)
  m.bias = 'relative'
  m.drop_path_rate = m.head_dropout_rate = 0.0
  config.batch_size = config.eval_batch_size = 16
  config.num_train_steps = 300
  config.optim.learning_rate = 2e-3
  config.optim.backbone_lr_mult = 1.0  # from scratch: one learning rate
  config.optim.weight_decay = 0.05
  config.optim.warmup_epochs = 0.1
  config.optim.grad_clip_norm = 1.0
  config.eval_every_steps = 100
  config.log_every_steps = 10
  config.checkpoint.every_steps = 100
  return config
