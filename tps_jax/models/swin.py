"""Swin video backbones: TPS, 2D Swin, TSM-Swin and Video Swin from one set of blocks.

Which temporal operator a block applies is data (``temporal_op``), chosen per block by
:func:`block_ops`; everything else is the Swin of Liu et al. Layout is NTHWC throughout.
"""
import dataclasses
import functools
import math
from typing import Any, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from tps_jax import shifts
from tps_jax.models import attention

LayerNorm = functools.partial(nn.LayerNorm, epsilon=1e-5)  # PyTorch's default eps
DenseInit = nn.initializers.truncated_normal(0.02)

# Per architecture: the temporal operator of even / odd blocks of every stage, and whether
# odd blocks use Swin's cyclic window shift.
ARCHS = {
    'tps': ('channel', 'patch'),    # the paper: TSM in even blocks, patch shift in odd ones
    'swin2d': ('none', 'none'),     # frames independent (up to the temporal patch size)
    'tsm': ('channel', 'channel'),  # channel shift everywhere
    'video_swin': ('none', 'none'),  # 3D windows do the temporal modelling
    # Ablations of TPS's two shifts (docs/ablation.md): the other op's blocks do none.
    'patch_only': ('none', 'patch'),
    'channel_only': ('channel', 'none'),
}


def arch_ops(arch: str) -> Tuple[str, str]:
  """``(even-block op, odd-block op)`` of ``arch``: the one place an unknown arch is refused."""
  if arch not in ARCHS:
    raise ValueError(f'config.model.arch={arch!r} is not one of {sorted(ARCHS)}')
  return ARCHS[arch]


def block_ops(arch: str, depth: int) -> Tuple[str, ...]:
  """The temporal operator of each block of a stage: 'channel' | 'patch' | 'none'."""
  even, odd = arch_ops(arch)
  return tuple(odd if i % 2 else even for i in range(depth))


def temporal_range(arch: str, pattern) -> int:
  """How many frames apart a patch-shifted query and key can be: ``max(s) - min(s)``.

  0 for architectures without patch shift. It sizes the ``relative`` bias table, so the
  model and the ImageNet inflation (``tps_jax/convert.py``) must agree: both call this.
  """
  return int(np.ptp(np.asarray(pattern))) if 'patch' in arch_ops(arch) else 0


@dataclasses.dataclass(frozen=True)
class BlockConfig:
  """What every block of a model shares; per-block fields are :class:`SwinBlock`'s own."""
  window_cfg: Tuple[int, int, int]
  bias_mode: str
  pattern: Tuple[Tuple[int, ...], ...]  # the patch-shift mosaic (see tps_jax/shifts.py)
  temporal_range: int                   # :func:`temporal_range`
  channel_shift_div: int = 8
  mlp_ratio: float = 4.0
  qkv_bias: bool = True
  attn_drop_rate: float = 0.0
  shift_impl: str = 'gather'


class DropPath(nn.Module):
  """Stochastic depth: drop the residual branch per sample."""
  rate: float

  @nn.compact
  def __call__(self, x, deterministic: bool):
    if deterministic or self.rate == 0.0:
      return x
    keep = 1.0 - self.rate
    mask = jax.random.bernoulli(self.make_rng('dropout'), keep, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(mask, x / keep, 0).astype(x.dtype)


def gelu(x):
  """Exact GELU written as torch.nn.GELU computes it, ``x/2 * (1 + erf(x/sqrt(2)))``.

  ``nn.gelu(approximate=False)`` uses ``erfc``, which XLA's CPU backend evaluates through an
  exponential and a division, slower than this polynomial ``erf`` (measured in
  docs/performance.md, "What is left"); the two agree to 1e-6.
  """
  return x * 0.5 * (1.0 + jax.lax.erf(x * (1.0 / math.sqrt(2.0))))


class Mlp(nn.Module):
  hidden: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    x = nn.Dense(self.hidden, dtype=self.dtype, kernel_init=DenseInit, name='fc1')(x)
    x = gelu(x)
    return nn.Dense(c, dtype=self.dtype, kernel_init=DenseInit, name='fc2')(x)


class SwinBlock(nn.Module):
  """x + DropPath(WindowAttention(LN(x))); x + DropPath(MLP(LN(x))), with a temporal op."""
  num_heads: int
  cfg: BlockConfig
  shift_cfg: Tuple[int, int, int]
  temporal_op: str  # 'none' | 'channel' | 'patch'
  drop_path: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, deterministic: bool = True):
    cfg = self.cfg
    b, t, h, w, c = x.shape
    window, shift = attention.effective_window((t, h, w), cfg.window_cfg, self.shift_cfg)
    y = LayerNorm(dtype=self.dtype, name='norm1')(x)
    pads = [(-n) % k for n, k in zip((t, h, w), window)]
    y = jnp.pad(y, ((0, 0), (0, pads[0]), (0, pads[1]), (0, pads[2]), (0, 0)))
    tp, hp, wp = t + pads[0], h + pads[1], w + pads[2]
    mask = None
    if any(shift):
      y = jnp.roll(y, [-s for s in shift], axis=(1, 2, 3))
      mask = jnp.asarray(attention.shift_mask((tp, hp, wp), window, shift))

    window_pattern = None
    if self.temporal_op == 'channel':
      y = shifts.channel_shift(y, self.num_heads, cfg.channel_shift_div)
    elif self.temporal_op == 'patch':
      y = shifts.patch_shift(y, cfg.pattern, window[1:], impl=cfg.shift_impl)
      window_pattern = shifts.pattern_offsets(cfg.pattern, window[1:], window[1:])
    elif self.temporal_op != 'none':
      raise ValueError(f'unknown temporal_op {self.temporal_op!r}')

    y = attention.WindowAttention(
        dim=c, num_heads=self.num_heads, window_cfg=cfg.window_cfg, bias_mode=cfg.bias_mode,
        temporal_range=cfg.temporal_range, qkv_bias=cfg.qkv_bias,
        attn_drop_rate=cfg.attn_drop_rate, dtype=self.dtype, name='attn')(
            y, window=window, mask=mask, pattern=window_pattern, deterministic=deterministic)

    if self.temporal_op == 'patch':  # move every token's output back to its own frame
      y = shifts.patch_shift(y, cfg.pattern, window[1:], inverse=True, impl=cfg.shift_impl)
    if any(shift):
      y = jnp.roll(y, list(shift), axis=(1, 2, 3))
    y = y[:, :t, :h, :w]
    x = x + DropPath(self.drop_path)(y, deterministic)
    y = LayerNorm(dtype=self.dtype, name='norm2')(x)
    y = Mlp(int(c * cfg.mlp_ratio), dtype=self.dtype, name='mlp')(y)
    return x + DropPath(self.drop_path)(y, deterministic)


class PatchMerging(nn.Module):
  """2x2 spatial merge: concat (even h, even w), (odd h, even w), (even h, odd w), (odd h, odd w)."""
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    _, _, h, w, c = x.shape
    x = jnp.pad(x, ((0, 0), (0, 0), (0, h % 2), (0, w % 2), (0, 0)))
    x = jnp.concatenate([x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2],
                         x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]], axis=-1)
    x = LayerNorm(dtype=self.dtype, name='norm')(x)
    return nn.Dense(2 * c, use_bias=False, dtype=self.dtype, kernel_init=DenseInit,
                    name='reduction')(x)


class PatchEmbed(nn.Module):
  """3D conv with kernel = stride = patch size (inputs padded up), then LayerNorm."""
  patch_size: Tuple[int, int, int]
  embed_dim: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    pads = [(-n) % p for n, p in zip(x.shape[1:4], self.patch_size)]
    x = jnp.pad(x, ((0, 0), (0, pads[0]), (0, pads[1]), (0, pads[2]), (0, 0)))
    x = nn.Conv(self.embed_dim, self.patch_size, strides=self.patch_size, padding='VALID',
                dtype=self.dtype, name='proj')(x)
    return LayerNorm(dtype=self.dtype, name='norm')(x)


class Stage(nn.Module):
  """``depth`` blocks (operators per :func:`block_ops`), then optional PatchMerging."""
  depth: int
  num_heads: int
  block: BlockConfig
  ops: Tuple[str, ...]
  drop_paths: Tuple[float, ...]
  downsample: bool
  remat: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, deterministic: bool):
    block_cls = SwinBlock
    if self.remat:
      block_cls = nn.remat(SwinBlock, static_argnums=(2,),
                           policy=jax.checkpoint_policies.nothing_saveable)
    for i in range(self.depth):
      shift = (0, 0, 0) if i % 2 == 0 else tuple(k // 2 for k in self.block.window_cfg)
      x = block_cls(num_heads=self.num_heads, cfg=self.block, shift_cfg=shift,
                    temporal_op=self.ops[i], drop_path=self.drop_paths[i], dtype=self.dtype,
                    name=f'blocks_{i}')(x, deterministic)
    if self.downsample:
      x = PatchMerging(dtype=self.dtype, name='downsample')(x)
    return x


class SwinVideoClassifier(nn.Module):
  """A Swin backbone of any ``arch`` (TPS, 2D Swin, TSM-Swin, Video Swin) + the I3D head.

  ``__call__(video, train) -> (logits, out)``.

  ``video`` is ``(B, T, H, W, 3)``; ``out['features']`` is the backbone output after the
  final LayerNorm, ``(B, T', H', W', C')``; ``out['pooled']`` the pooled features.
  Attention maps are sown into the ``'intermediates'`` collection when it is mutable.
  """
  num_classes: int
  arch: str = 'tps'
  embed_dim: int = 96
  depths: Sequence[int] = (2, 2, 6, 2)
  num_heads: Sequence[int] = (3, 6, 12, 24)
  patch_size: Tuple[int, int, int] = (2, 4, 4)
  window_size: Tuple[int, int, int] = (1, 7, 7)
  mlp_ratio: float = 4.0
  qkv_bias: bool = True
  drop_path_rate: float = 0.1
  attn_drop_rate: float = 0.0
  head_dropout_rate: float = 0.5
  bias: str = 'official'
  shift_pattern: Tuple[Tuple[int, ...], ...] = ((-4, 1, 2), (-1, 0, 3), (-2, -3, 4))
  channel_shift_div: int = 8
  shift_impl: str = 'gather'
  remat: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, video, train: bool = False):
    deterministic = not train
    x = PatchEmbed(tuple(self.patch_size), self.embed_dim, dtype=self.dtype,
                   name='patch_embed')(video.astype(self.dtype))
    total = sum(self.depths)
    dpr = [float(r) for r in np.linspace(0.0, self.drop_path_rate, total)]
    pattern = tuple(tuple(int(v) for v in row) for row in self.shift_pattern)
    block = BlockConfig(
        window_cfg=tuple(self.window_size), bias_mode=self.bias, pattern=pattern,
        temporal_range=temporal_range(self.arch, pattern),
        channel_shift_div=self.channel_shift_div, mlp_ratio=self.mlp_ratio,
        qkv_bias=self.qkv_bias, attn_drop_rate=self.attn_drop_rate, shift_impl=self.shift_impl)
    start = 0
    for i, depth in enumerate(self.depths):
      x = nn.with_logical_constraint(x, ('batch', 'time', 'height', 'width', 'embed'))
      x = Stage(depth=depth, num_heads=self.num_heads[i], block=block,
                ops=block_ops(self.arch, depth), drop_paths=tuple(dpr[start:start + depth]),
                downsample=i < len(self.depths) - 1, remat=self.remat, dtype=self.dtype,
                name=f'layers_{i}')(x, deterministic)
      start += depth
    features = LayerNorm(dtype=self.dtype, name='norm')(x)
    pooled = jnp.mean(features.astype(jnp.float32), axis=(1, 2, 3))
    y = nn.Dropout(self.head_dropout_rate)(pooled, deterministic=deterministic)
    logits = nn.Dense(self.num_classes, kernel_init=nn.initializers.normal(0.01),
                      name='head')(y)
    return logits, {'features': features, 'pooled': pooled}
