"""Model construction from ``config.model`` (see ``configs/model_table.py``)."""
import math
from typing import Sequence, Tuple

from absl import logging
import jax
import jax.numpy as jnp

from tps_jax.models import attention
from tps_jax.models.swin import SwinVideoClassifier, arch_ops, block_ops, temporal_range

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}
SHIFT_IMPLS = ('gather', 'roll')


def validate(model_cfg, num_frames: int, image_size: int) -> None:
  """Raises a one-line ValueError naming the config field that cannot work.

  Called before anything is compiled, so a bad config fails in milliseconds.
  """
  m = model_cfg
  arch_ops(m.arch)
  if m.bias not in attention.BIAS_MODES:
    raise ValueError(f'config.model.bias={m.bias!r} is not one of {list(attention.BIAS_MODES)}')
  if m.dtype not in DTYPES:
    raise ValueError(f'config.model.dtype={m.dtype!r} is not one of {sorted(DTYPES)}')
  if m.shift_impl not in SHIFT_IMPLS:
    raise ValueError(f'config.model.shift_impl={m.shift_impl!r} is not one of {list(SHIFT_IMPLS)}')
  for name in ('patch_size', 'window_size'):
    v = tuple(getattr(m, name))
    if len(v) != 3 or min(v) < 1:
      raise ValueError(f'config.model.{name}={v} must be 3 positive ints (T, H, W)')
  if len(m.depths) != len(m.num_heads):
    raise ValueError(f'config.model.depths={tuple(m.depths)} and num_heads={tuple(m.num_heads)} '
                     'must have the same length (one per stage)')
  for i, heads in enumerate(m.num_heads):
    dim = m.embed_dim * 2 ** i
    if dim % heads:
      raise ValueError(f'config.model.embed_dim={m.embed_dim}: stage {i} width {dim} is not '
                       f'divisible by num_heads[{i}]={heads}')
  tokens_t = math.ceil(num_frames / m.patch_size[0])
  if m.bias == 'official':
    attention.check_official_bias(
        tokens_t, m.window_size[0],
        f'{num_frames} frames / patch_size[0]={m.patch_size[0]} give {tokens_t} temporal tokens')
  if m.arch != 'video_swin' and m.window_size[0] != 1:
    raise ValueError(f'config.model.window_size={tuple(m.window_size)}: arch {m.arch!r} '
                     'attends within one frame; the temporal window must be 1')
  tokens_hw = math.ceil(image_size / m.patch_size[1])
  if tokens_hw < 2 ** (len(m.depths) - 1):
    raise ValueError(f'image size {image_size} / patch {m.patch_size[1]} = {tokens_hw} tokens '
                     f'is too small for {len(m.depths)} stages of 2x2 merging')


def build_model(model_cfg, num_classes: int) -> SwinVideoClassifier:
  """The Flax module for ``config.model``; ``apply(vars, video, train=...) -> (logits, out)``."""
  m = model_cfg
  return SwinVideoClassifier(
      num_classes=num_classes, arch=m.arch, embed_dim=m.embed_dim, depths=tuple(m.depths),
      num_heads=tuple(m.num_heads), patch_size=tuple(m.patch_size),
      window_size=tuple(m.window_size), mlp_ratio=m.mlp_ratio, qkv_bias=m.qkv_bias,
      drop_path_rate=m.drop_path_rate, attn_drop_rate=m.attn_drop_rate,
      head_dropout_rate=m.head_dropout_rate, bias=m.bias,
      shift_pattern=tuple(tuple(r) for r in m.shift_pattern),
      channel_shift_div=m.channel_shift_div, shift_impl=m.shift_impl, remat=m.remat,
      dtype=DTYPES[m.dtype])


def _probe_clip(model: SwinVideoClassifier) -> Tuple[int, int, int, int]:
  """The smallest clip with whole windows at every stage: enough to create the parameters."""
  pt, ph, _ = model.patch_size
  side = ph * model.window_size[1] * 2 ** (len(model.depths) - 1)
  return (pt * model.window_size[0], side, side, 3)


def abstract_params(model: SwinVideoClassifier):
  """The parameter shapes of ``model`` (``jax.eval_shape``: nothing is computed)."""
  clip = jax.ShapeDtypeStruct((1,) + _probe_clip(model), jnp.float32)
  return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), clip)['params']


def init_head(model: SwinVideoClassifier, rng=None):
  """A new head, as ``model.init`` makes it (its values up to rounding), jitted so that only
  the head's initialisers run: eagerly, the whole forward ran (minutes).

  Fine-tuning on another label set starts from it. ``rng``: default ``jax.random.key(0)``.
  """
  logging.info('initialising a new %d-class head', model.num_classes)
  clip = jnp.zeros((1,) + _probe_clip(model), jnp.float32)
  init = jax.jit(lambda r: model.init(r, clip, train=False)['params']['head'])
  return init(rng if rng is not None else jax.random.key(0))


def count_params(tree) -> int:
  """Number of scalars in a (possibly abstract) parameter tree."""
  return sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(tree))
