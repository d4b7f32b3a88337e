"""The shared base of every experiment: model table + data table + train sections.

Experiment files (``configs/ssv2_tps.py`` ...) call :func:`get_config` and change a few
fields. Code reads ``config.x`` directly (never ``config.get``) and ``main.py`` locks the
config, so a misspelled ``--config.x=y`` is an error, not a silently ignored key.
"""
import ml_collections

from configs import data_table
from configs import model_table


def get_config(dataset: str = 'synthetic', arch: str = 'tps',
               size: str = 'tiny') -> ml_collections.ConfigDict:
  """The official TPS recipe (Xiang et al., every released config) on ``dataset``.

  Args:
    dataset: a ``configs/data_table.py`` name (ssv2, ssv1, k400, diving48, synthetic, ...).
    arch: tps | swin2d | tsm | video_swin.
    size: tiny | small | base | large.

  Returns:
    The full config; fields are documented inline.
  """
  config = ml_collections.ConfigDict()
  config.model = model_table.model_config(arch, size)
  config.dataset = data_table.dataset_config(dataset)
  config.input = data_table.input_config(dataset)

  config.seed = 0
  config.batch_size = 64          # global: 8 GPUs x 8 videos in the official runs
  config.eval_batch_size = 64     # global, in videos (each with its test views)
  config.num_epochs = 30.0
  config.num_train_steps = -1     # > 0 overrides num_epochs
  config.init_from = ''           # orbax dir (tps_jax.apps.convert), official .pth/.npz,
                                  # or ImageNet Swin .pth (inflated); head re-initialised
                                  # when the class count differs

  config.optim = ml_collections.ConfigDict()
  config.optim.learning_rate = 1e-3        # of the head; the backbone gets x backbone_lr_mult
  config.optim.backbone_lr_mult = 0.1
  config.optim.head_regex = r'^head/'      # parameters of the classifier (lr x1)
  config.optim.b1 = 0.9
  config.optim.b2 = 0.999
  config.optim.eps = 1e-8
  config.optim.weight_decay = 0.02
  # Names (the last path component) without weight decay: norms, biases, bias tables.
  config.optim.no_decay = r'(^|/)(bias|scale|relative_position_bias_table)$'
  config.optim.schedule = 'cosine'         # cosine | constant (after the warm-up)
  config.optim.warmup_epochs = 2.5
  config.optim.min_lr = 0.0
  config.optim.grad_clip_norm = 0.0        # 0 = off (the official runs do not clip)
  config.optim.grad_accum_steps = 1        # micro-batches per step (scan in the step)

  config.loss = ml_collections.ConfigDict()
  config.loss.label_smoothing = 0.0        # 0.1 on SSv1/SSv2, 0.02 on Diving-48

  config.eval = ml_collections.ConfigDict()
  # Splits by role in config.dataset.splits (train | eval | test) or by name.
  config.eval.splits = ('eval',)           # evaluated at the end / by --mode=evaluate
  config.eval.split_during_training = 'eval'
  config.eval.write_predictions = False    # predictions_<split>.npz: per-video logits, probs
  config.eval.views_one_by_one = False     # lax.map over views: less memory, same result

  config.eval_every_steps = 0              # 0: only at the end of training
  config.log_every_steps = 50
  config.profile_steps = 5                 # profile this many steps (0: never) ...
  config.profile_first_step = 10           # ... starting this many steps into the run

  config.checkpoint = ml_collections.ConfigDict()
  config.checkpoint.every_steps = 1000     # also at the end and on SIGTERM / preemption
  config.checkpoint.keep = 3
  config.checkpoint.asynchronous = True

  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1                    # -1: all devices not used by the other axis
  config.mesh.fsdp = 1                     # > 1: parameters + optimizer state split (FSDP)

  config.sharding = ml_collections.ConfigDict()
  # (regex on the parameter path, 'fsdp' | 'replicate'): the first match decides.
  config.sharding.rules = (('relative_position_bias_table', 'replicate'), ('.*', 'fsdp'))
  config.sharding.fsdp_min_size = 2 ** 16  # smaller tensors stay replicated
  # Logical activation axes of the model -> mesh axes ('batch' is always split over every
  # mesh axis: tps_jax/sharding.py).
  config.sharding.logical_rules = (('time', None), ('height', None), ('width', None),
                                   ('embed', None))
  return config
