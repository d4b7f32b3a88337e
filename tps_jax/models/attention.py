"""Window attention with relative position bias (Swin), and the TPS bias rules.

Windows are ``(wd, wh, ww)`` boxes over ``(T, H, W)``; tokens inside a window are ordered
``(d, h, w)`` row-major, as in the PyTorch Swin code, so bias tables import unchanged.
"""
import functools
from typing import Optional, Sequence, Tuple

import flax.linen as nn
import jax.numpy as jnp
import numpy as np


# The released TPS model's bias table is hard-wired to 16 temporal tokens.
OFFICIAL_MAX_FRAMES = 16
BIAS_MODES = ('official', 'relative')


def effective_window(size: Sequence[int], window: Sequence[int], shift: Sequence[int]):
  """Swin's rule: a window never exceeds the feature map; then that axis is not shifted."""
  win, sh = list(window), list(shift)
  for i, (n, w) in enumerate(zip(size, window)):
    if n <= w:
      win[i], sh[i] = n, 0
  return tuple(win), tuple(sh)


def window_partition(x: jnp.ndarray, window: Sequence[int]) -> jnp.ndarray:
  """``(B, T, H, W, C)`` -> ``(B, nT, nH*nW, wd*wh*ww, C)``."""
  b, t, h, w, c = x.shape
  wd, wh, ww = window
  x = x.reshape(b, t // wd, wd, h // wh, wh, w // ww, ww, c)
  x = x.transpose(0, 1, 3, 5, 2, 4, 6, 7)
  return x.reshape(b, t // wd, (h // wh) * (w // ww), wd * wh * ww, c)


def window_reverse(x: jnp.ndarray, window: Sequence[int], thw: Sequence[int]) -> jnp.ndarray:
  """Inverse of :func:`window_partition`."""
  b, c = x.shape[0], x.shape[-1]
  t, h, w = thw
  wd, wh, ww = window
  x = x.reshape(b, t // wd, h // wh, w // ww, wd, wh, ww, c)
  x = x.transpose(0, 1, 4, 2, 5, 3, 6, 7)
  return x.reshape(b, t, h, w, c)


@functools.lru_cache(maxsize=None)
def shift_mask(thw: Tuple[int, int, int], window: Tuple[int, int, int],
               shift: Tuple[int, int, int]) -> np.ndarray:
  """Swin's attention mask for cyclically shifted windows: 0 or -100, ``(nT, nHW, N, N)``.

  Computed once per shape; with no temporal shift the mask is the same for every temporal
  window, so it is built for one (``nT = 1``) and broadcast.
  """
  t = thw[0] if shift[0] else window[0]
  img = np.zeros((1, t, thw[1], thw[2], 1), np.float32)
  cnt = 0
  slices = [((slice(0, -w), slice(-w, -s), slice(-s, None)) if s else (slice(None),))
            for w, s in zip(window, shift)]
  for d in slices[0]:
    for h in slices[1]:
      for w in slices[2]:
        img[:, d, h, w, :] = cnt
        cnt += 1
  win = np.asarray(window_partition(img, window))[0, ..., 0]  # (nT, nHW, N)
  diff = win[..., None, :] - win[..., :, None]
  return np.where(diff != 0, -100.0, 0.0).astype(np.float32)


def _window_coords(window: Sequence[int]) -> np.ndarray:
  """``(N, 3)`` integer ``(d, h, w)`` of each token of a window."""
  return np.stack(np.meshgrid(*[np.arange(n) for n in window], indexing='ij'), -1).reshape(-1, 3)


def check_official_bias(tokens_t: int, window_t: int, what: str = '') -> None:
  """The released table's limits (16 temporal tokens, 1-frame windows): one-line ValueError.

  Args:
    tokens_t: temporal tokens (frames / temporal patch size).
    window_t: the temporal window.
    what: how ``tokens_t`` came about, for the message (default: the count alone).
  """
  if tokens_t > OFFICIAL_MAX_FRAMES:
    raise ValueError(f"{what or f'{tokens_t} temporal tokens'}, but config.model.bias='official' "
                     f"supports at most {OFFICIAL_MAX_FRAMES} temporal tokens (the released "
                     "model's table): use config.model.bias='relative'")
  if window_t != 1:
    raise ValueError(f"config.model.window_size[0]={window_t}: bias='official' needs a "
                     'temporal window of 1')


def bias_table_rows(mode: str, window_cfg: Sequence[int], temporal_range: int) -> int:
  """Rows of the learned table (per head)."""
  wd, wh, ww = window_cfg
  if mode == 'official':
    return (2 * OFFICIAL_MAX_FRAMES - 1) * (2 * wh - 1) * (2 * ww - 1)
  return (2 * (wd - 1 + temporal_range) + 1) * (2 * wh - 1) * (2 * ww - 1)


def bias_index(mode: str, *, window_cfg: Sequence[int], window: Sequence[int],
               num_frames: int, pattern: Optional[np.ndarray], temporal_range: int) -> np.ndarray:
  """Row of the bias table for each (query, key) pair: ``(nTb, N, N)`` ints.

  Args:
    mode: ``'official'`` -- the released TPS model's rule: per frame slot ``t`` (so
      ``nTb = T``), the query's temporal coordinate is ``(t - s(p)) mod T`` and the key's
      ``(0 - s(p')) mod T`` (``s = 0`` in blocks without patch shift), on a table with 31
      temporal rows; exact at T = 16, defined for T <= 16. ``'relative'`` -- a bias of the
      true offset: key content frame minus query content frame, ``(d_k - s(p')) -
      (d_q - s(p))``, the same for every window (``nTb = 1``); any T, any window.
    window_cfg: the configured window (fixes the table layout).
    window: the window actually used (smaller where the feature map is smaller).
    num_frames: temporal tokens T of this stage.
    pattern: per window position shift ``s`` as an ``(wh, ww)`` array, or None.
    temporal_range: ``max(s) - min(s)`` of the configured pattern (0 without patch shift).
  """
  coords = _window_coords(window)
  n = coords.shape[0]
  s = np.zeros(window[1] * window[2], np.int64) if pattern is None else np.asarray(pattern).reshape(-1)
  s = np.tile(s, window[0])  # the same mosaic in every frame of a 3D window
  sh, sw = 2 * window_cfg[1] - 1, 2 * window_cfg[2] - 1
  dh = coords[:, None, 1] - coords[None, :, 1] + window_cfg[1] - 1
  dw = coords[:, None, 2] - coords[None, :, 2] + window_cfg[2] - 1
  spatial = dh * sw + dw  # (N, N)
  if mode == 'official':
    check_official_bias(num_frames, window[0])
    t = np.arange(num_frames)[:, None, None]
    dq = (t - s[None, :, None]) % num_frames if pattern is not None else np.broadcast_to(t, (num_frames, n, 1))
    dk = (0 - s[None, None, :]) % num_frames
    dt = dq - dk + OFFICIAL_MAX_FRAMES - 1
    return (dt * sh * sw + spatial[None]).astype(np.int32)
  if mode == 'relative':
    depth = coords[:, 0] - s  # content frame of each token, relative to the window start
    dt = depth[None, :] - depth[:, None] + window_cfg[0] - 1 + temporal_range
    return (dt * sh * sw + spatial)[None].astype(np.int32)
  raise ValueError(f'config.model.bias={mode!r} is not one of {list(BIAS_MODES)}')


class WindowAttention(nn.Module):
  """Multi-head self-attention inside windows of a ``(B, T, H, W, C)`` map."""
  dim: int
  num_heads: int
  window_cfg: Tuple[int, int, int]
  bias_mode: str
  temporal_range: int = 0
  qkv_bias: bool = True
  attn_drop_rate: float = 0.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, window, mask, pattern, deterministic: bool):
    """x: padded ``(B, T, H, W, C)``; returns the same shape (after the output projection)."""
    b, t, h, w, c = x.shape
    head_dim = c // self.num_heads
    dense = functools.partial(nn.Dense, dtype=self.dtype,
                              kernel_init=nn.initializers.truncated_normal(0.02))
    rows = bias_table_rows(self.bias_mode, self.window_cfg, self.temporal_range)
    table = self.param('relative_position_bias_table',
                       nn.initializers.truncated_normal(0.02), (rows, self.num_heads))
    index = bias_index(self.bias_mode, window_cfg=self.window_cfg, window=window,
                       num_frames=t, pattern=pattern, temporal_range=self.temporal_range)
    bias = jnp.transpose(table[index], (0, 3, 1, 2))  # (nTb, heads, N, N)

    windows = window_partition(x, window)  # (B, nT, nW, N, C)
    n = windows.shape[-2]
    qkv = dense(3 * c, use_bias=self.qkv_bias, name='qkv')(windows)
    # A split, not three index slices: its gradient is one concatenate instead of three
    # zero-padded copies of qkv summed (its cost: docs/performance.md).
    q, k, v = (y.reshape(*windows.shape[:-1], self.num_heads, head_dim)
               for y in jnp.split(qkv, 3, axis=-1))
    q = q * head_dim ** -0.5
    logits = jnp.einsum('...qhd,...khd->...hqk', q, k)  # (B, nT, nW, heads, N, N)
    logits = logits.astype(jnp.float32) + bias[None, :, None]
    if mask is not None:
      logits = logits + mask[None, :, :, None]
    attn = nn.softmax(logits, axis=-1)
    self.sow('intermediates', 'attention', attn)
    attn = nn.Dropout(self.attn_drop_rate)(attn, deterministic=deterministic)
    out = jnp.einsum('...hqk,...khd->...qhd', attn.astype(v.dtype), v)
    out = out.reshape(*windows.shape[:-2], n, c)
    out = dense(c, name='proj')(out)
    return window_reverse(out, window, (t, h, w))
