"""The shared base of every experiment: model table + data table + train sections.

Experiment files (``configs/ssv2_tps.py`` ...) call :func:`get_config` and change a few
fields. Code reads ``config.x`` directly (never ``config.get``) and ``main.py`` locks the
config, so a misspelled ``--config.x=y`` is an error, not a silently ignored key.
"""
import ml_collections

from configs import data_table
from configs import model_table

# Data sets of the paper's tables (configs/{ssv2,ssv1,k400,diving48}_tps.py).
PAPER_DATASETS = ('ssv2', 'ssv1', 'k400', 'diving48')


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
  config.init_from = ''           # a training workdir (e.g. the K400 run), an orbax dir
                                  # (python -m tps_jax.apps.convert), official .pth/.npz, an
                                  # ImageNet Swin .pth (inflated), or 'scratch'; the head is
                                  # re-initialised when the class count differs
  # The paper's data sets: every number there fine-tunes pretrained weights, so an empty
  # init_from is an error (README: "Reproducing the paper"); 'scratch' overrides.
  config.init_required = dataset in PAPER_DATASETS

  config.optim = ml_collections.ConfigDict()
  config.optim.learning_rate = 1e-3        # before the per-parameter lr_mult
  config.optim.b1 = 0.9
  config.optim.b2 = 0.999
  config.optim.eps = 1e-8
  config.optim.weight_decay = 0.02         # before the per-parameter decay_mult
  # Per-parameter (pattern, lr_mult, decay_mult), tried in order on the official PyTorch
  # name (backbone.layers.0.blocks.1.norm1.weight, cls_head.fc_cls.bias, ...) with
  # re.search; first match wins, no match: (1, 1). See tps_jax/optim.py.
  config.optim.rules = 'released'          # a key of rule_tables
  config.optim.rule_tables = ml_collections.ConfigDict(dict(
      # What the released runs did: mmcv's custom_keys, longest key first, substrings.
      released=(('relative_position_bias_table', 1.0, 0.0), ('absolute_pos_embed', 1.0, 0.0),
                ('backbone', 0.1, 1.0), ('norm', 1.0, 0.0)),
      # The recipe as stated: no decay on norms, biases and bias tables; backbone x0.1.
      stated=((r'^backbone\..*(norm|\.bias$|relative_position_bias_table|absolute_pos_embed)',
               0.1, 0.0),
              (r'^backbone\.', 0.1, 1.0), (r'\.bias$', 1.0, 0.0)),
      # From scratch: one lr; no decay on norms, biases and bias tables.
      from_scratch=((r'(norm|\.bias$|relative_position_bias_table|absolute_pos_embed)',
                     1.0, 0.0),),
  ))
  # cosine_by_epoch: mmcv's CosineAnnealing (by_epoch, lr constant within an epoch, the
  # released runs) | cosine (per step after the warm-up) | constant (after the warm-up).
  config.optim.schedule = 'cosine_by_epoch'
  config.optim.warmup_epochs = 2.5         # linear, by iteration (mmcv warmup='linear')
  config.optim.warmup_ratio = 0.1          # warm-up starts at this x lr (mmcv's default)
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
  # Validation while training (split_during_training): the cheap protocol of the official
  # configs' val pipeline, one clip, short side min_resize, one centre crop.
  config.eval.val_num_clips = 1
  config.eval.val_num_crops = 1
  # The validation metric that picks checkpoints_best: a key of tps_jax.evaluation.METRICS.
  config.eval.best_metric = 'top1'

  config.eval_every_epochs = 5.0           # validate this often (official interval=5); 0: never
  config.eval_every_steps = 0              # > 0 overrides eval_every_epochs
  config.log_every_steps = 50
  config.tensorboard = True               # events in WORKDIR (on gs:// written by TF's own GCS client)
  config.profile_steps = 5                 # profile this many steps (0: never) ...
  config.profile_first_step = 10           # ... starting this many steps into the run

  config.checkpoint = ml_collections.ConfigDict()
  config.checkpoint.every_steps = 1000     # also at the end and on SIGTERM / preemption
  config.checkpoint.keep = 3
  config.checkpoint.asynchronous = True
  config.checkpoint.lock_lease_minutes = 30.0  # gs:// lock: a holder silent this long is dead
  # True: train from scratch in a workdir whose checkpoints are all bad (kept beside it).
  config.checkpoint.start_over = False

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
