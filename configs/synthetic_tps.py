"""The default run: TPS learns the direction of time on the embedded synthetic set (CPU).

    python main.py --config=configs/synthetic_tps.py --workdir=workdir/synthetic_tps

Generates ``reversal_pairs/small`` (10 classes in time-reversal pairs) on first use, then
trains a small TPS from scratch on 8 frames of 32x32 in about 10 minutes on a 2-core CPU.
What it reaches, over seeds, is the README's demo table (``docs/demo_results.md``);
a 2D Swin (``synthetic_swin2d.py``: the same recipe, frame-independent attention) cannot
tell a clip from its time reversal. ``scripts/synthetic_results.py`` runs every
``synthetic_*.py`` over seeds and writes that table.
"""
from configs import base


def get_config(arch: str = 'tps'):
  config = base.get_config('synthetic', arch, 'tiny')
  m = config.model
  m.embed_dim, m.depths, m.num_heads = 32, (2, 2), (2, 4)
  m.patch_size = (1, 4, 4)          # one frame per token: 2D Swin is truly frame-blind
  # 8x8 windows: each stage-1 window is a whole frame, so the mosaic spans the object's path.
  m.window_size = (4, 8, 8) if arch == 'video_swin' else (1, 8, 8)
  m.bias = 'relative'
  m.drop_path_rate = m.head_dropout_rate = 0.0
  config.batch_size = config.eval_batch_size = 32
  config.num_train_steps = 2000
  config.optim.learning_rate = 1.5e-3
  config.optim.rules = 'from_scratch'  # one learning rate; no decay on norms, biases, tables
  config.optim.schedule = 'cosine'     # per step, from 0 (the recipe the README table measured)
  config.optim.warmup_ratio = 0.0
  config.optim.weight_decay = 0.05
  config.optim.warmup_epochs = 0.8     # 100 steps of 125 per epoch (4000 clips / 32)
  config.optim.grad_clip_norm = 1.0
  config.eval_every_steps = 500
  config.log_every_steps = 50
  config.checkpoint.every_steps = 500
  return config
