"""Inference without an optimizer: the scores of a model's parameters on test views.

::

    params, provenance = weights.load_params(checkpoint, config.model, None)  # any checkpoint
    model = models.build_model(config.model, provenance.num_classes)
    out = inference.scores(model.apply, params, views, config=config)  # out['probs']: (B, K)

``scores`` is the evaluation protocol itself: ``steps.eval_step`` calls it.
"""
from typing import Dict

import flax.linen as nn
import jax
import jax.numpy as jnp

from tps_jax import sharding


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
