"""Inference without an optimizer: a model and its parameters from any checkpoint, and scores.

::

    model, params, meta = inference.load_checkpoint(config, checkpoint)
    out = inference.scores(model.apply, params, views, config=config)  # out['probs']: (B, K)

``checkpoint`` is a ``main.py`` workdir (its latest checkpoint, parameters only), an orbax
directory of ``python -m tps_jax.apps.convert``, or an official ``.pth`` / ``.npz``.
``scores`` is the evaluation protocol itself: ``steps.eval_step`` calls it.
"""
from typing import Any, Dict, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from tps_jax import checkpoints
from tps_jax import convert
from tps_jax import models
from tps_jax import sharding
from tps_jax import workdir as wd

_HEAD_KEY = 'cls_head.fc_cls.weight'


def scores(apply_fn, params, video: jax.Array, *, config) -> Dict[str, jax.Array]:
  """Per-video scores averaged over the test views (the official protocol).

  Args:
    apply_fn: the model's ``apply``.
    params: its parameters.
    video: ``(B, V, T, H, W, 3)``; V = clips x crops views of each video.
    config: the experiment config; ``config.eval.views_one_by_one`` runs one view at a
      time (``lax.map``) to bound memory with many views of a large model.

  Returns:
    ``{'probs': (B, K) mean softmax over views, 'logits': (B, K) mean logits}``.
  """
  apply = lambda v: apply_fn({'params': params}, v, train=False)[0]
  with nn.logical_axis_rules(sharding.logical_rules(config)):
    if config.eval.views_one_by_one:
      logits = jnp.moveaxis(jax.lax.map(apply, jnp.moveaxis(video, 1, 0)), 0, 1)
    else:
      b, v = video.shape[:2]
      logits = apply(video.reshape((b * v,) + video.shape[2:])).reshape(b, v, -1)
  logits = logits.astype(jnp.float32)
  return {'probs': jax.nn.softmax(logits).mean(1), 'logits': logits.mean(1)}


def _load_workdir(config, workdir: str):
  try:
    checkpoints.check_workdir(workdir, config)
  except ValueError as e:  # its advice is for training; here the config is what is wrong
    raise ValueError(str(e).replace('use a new --workdir', 'pass the config it was trained '
                                    'with')) from None
  params, meta = checkpoints.restore_params(workdir)  # verified; host arrays
  model = models.build_model(config.model, int(meta['num_classes']))
  return model, params, dict(meta, kind='workdir')


def load_checkpoint(config, checkpoint: str) -> Tuple[Any, Any, Dict[str, Any]]:
  """``(model, params, meta)`` of a ``main.py`` workdir, a converted orbax dir or an official file.

  Args:
    config: the experiment config; its ``model`` section must describe the checkpoint.
    checkpoint: a workdir (has ``checkpoints/``; latest step, parameters only), an orbax
      directory of ``python -m tps_jax.apps.convert``, or an official ``.pth`` / ``.npz``.

  Returns:
    The Flax model (class count from the checkpoint), its parameters, and ``meta``:
    ``kind`` ('workdir' | 'orbax' | 'official'), ``num_classes``, ``step`` (None outside a
    workdir) and, for a workdir, the ``model`` config it was trained with.

  Raises:
    FileNotFoundError, ValueError, KeyError: one line naming the path or the key.
  """
  wd.check_storage(checkpoint, '--checkpoint')
  if not wd.exists(checkpoint):
    raise FileNotFoundError(f'--checkpoint: no such file or directory: {checkpoint}')
  if wd.isdir(wd.join(checkpoint, wd.CHECKPOINTS)):
    return _load_workdir(config, checkpoint)
  if wd.isdir(checkpoint):
    model, variables = convert.load_pretrained(checkpoint, config.model, None)
    kind = 'orbax'
  else:
    sd = convert.load_state_dict(checkpoint)
    if _HEAD_KEY not in sd:
      raise ValueError(f'--checkpoint: {checkpoint} has no classifier ({_HEAD_KEY}): an '
                       'ImageNet or backbone-only checkpoint cannot predict video classes')
    model, variables = convert.official_to_flax(sd, config.model)
    kind = 'official'
  return model, variables['params'], dict(kind=kind, num_classes=model.num_classes, step=None)
