"""The two temporal shift operators of TPS, as pure functions (no parameters).

Shape contract: ``x`` is ``(B, T, H, W, C)`` (time on axis 1). Both ops only move data along
time, so they add no FLOPs and no parameters; under ``jit`` and ``grad`` they are gathers.

* Patch shift (the paper's contribution): inside every ``wh x ww`` attention window, the
  token at window position ``(h, w)`` reads frame ``t - s[h % P][w % Q]`` (cyclic in time),
  where ``s`` is a small integer mosaic (pattern C: a 3x3 grid of shifts in [-4, 4]). After
  window attention the output is moved back with ``-s``, so a 2D window attends over patches
  from 9 different frames.
* Channel shift (TSM, Lin et al.): per attention head, the first ``hd/8`` channels read frame
  ``t-1`` and the next ``hd/8`` read ``t+1``; the first/last frame keep their own value, as in
  the released TPS model (no zero padding).
"""
import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def pattern_offsets(pattern: Sequence[Sequence[int]], window_hw: Sequence[int],
                    hw: Sequence[int]) -> np.ndarray:
  """Per-position temporal shift ``s(h, w)`` on an ``(H, W)`` grid tiled by windows.

  Args:
    pattern: ``P x Q`` mosaic of integer shifts, indexed by window-local ``(h % P, w % Q)``.
    window_hw: window size ``(wh, ww)``; window-local coordinates are ``h % wh``.
    hw: grid size ``(H, W)``, multiples of the window (the block pads first).

  Returns:
    int array ``(H, W)``.
  """
  pat = np.asarray(pattern, dtype=np.int64)
  if pat.ndim != 2:
    raise ValueError(f'shift_pattern must be a 2D grid of ints, got shape {pat.shape}')
  h = (np.arange(hw[0]) % window_hw[0]) % pat.shape[0]
  w = (np.arange(hw[1]) % window_hw[1]) % pat.shape[1]
  return pat[h[:, None], w[None, :]]


def _source_frames(num_frames: int, offsets: np.ndarray) -> np.ndarray:
  """``src[t, h, w] = (t - s(h, w)) mod T``: the frame each output token reads."""
  t = np.arange(num_frames)[:, None, None]
  return (t - offsets[None]) % num_frames


def patch_shift(x: jnp.ndarray, pattern, window_hw, *, inverse: bool = False,
                impl: str = 'gather') -> jnp.ndarray:
  """Temporal patch shift: ``out[:, t, h, w] = x[:, (t - s(h, w)) mod T, h, w]``.

  Args:
    x: ``(B, T, H, W, C)`` with ``H, W`` multiples of ``window_hw``.
    pattern: the mosaic (see :func:`pattern_offsets`).
    window_hw: ``(wh, ww)`` attention window.
    inverse: shift by ``-s`` (undoes the forward shift exactly).
    impl: ``'gather'`` (one static gather whose gradient is the inverse gather; the
      default) or ``'roll'`` (one ``jnp.roll`` per distinct shift value, selected per
      position: the official code's formulation). The gather is the cheaper of the two in
      every stage, forward and backward: ``docs/shift_ops.md`` (written by
      ``benchmarks/shift_ops.py``) has the measured shares.

  Returns:
    Array of the shape and dtype of ``x``.
  """
  if impl == 'gather':
    return _gather_shift(x, _as_tuple(pattern), tuple(window_hw), inverse)
  _, t, h, w, _ = x.shape
  offsets = pattern_offsets(pattern, window_hw, (h, w))
  if inverse:
    offsets = -offsets
  if impl == 'roll':
    out = x
    for s in np.unique(offsets):
      if s % t == 0:
        continue
      sel = jnp.asarray(offsets == s)[None, None, :, :, None]
      out = jnp.where(sel, jnp.roll(x, int(s), axis=1), out)
    return out
  raise ValueError(f"shift_impl={impl!r} is not one of ['gather', 'roll']")


def _as_tuple(pattern):
  return tuple(tuple(int(v) for v in row) for row in pattern)


def _gather(x, pattern, window_hw, inverse):
  _, t, h, w, _ = x.shape
  offsets = pattern_offsets(pattern, window_hw, (h, w))
  src = _source_frames(t, -offsets if inverse else offsets)  # (T, H, W), static
  return x[:, src, np.arange(h)[None, :, None], np.arange(w)[None, None, :]]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _gather_shift(x, pattern, window_hw, inverse):
  return _gather(x, pattern, window_hw, inverse)


def _gather_shift_fwd(x, pattern, window_hw, inverse):
  return _gather(x, pattern, window_hw, inverse), None


def _gather_shift_bwd(pattern, window_hw, inverse, _, g):
  # The shift is a permutation: its transpose is the inverse shift (a gather), not the
  # scatter-add JAX would derive.
  return (_gather(g, pattern, window_hw, not inverse),)


_gather_shift.defvjp(_gather_shift_fwd, _gather_shift_bwd)


def channel_shift(x: jnp.ndarray, num_heads: int, fold_div: int = 8) -> jnp.ndarray:
  """TSM channel shift per attention head, edges keep their own frame.

  Args:
    x: ``(B, T, H, W, C)``, ``C`` divisible by ``num_heads``.
    num_heads: heads; each head's channels ``[0, hd/div)`` read ``t-1``,
      ``[hd/div, 2hd/div)`` read ``t+1``, the rest are unchanged.
    fold_div: the divisor (8 in TPS / TSM).

  Returns:
    Array of the shape and dtype of ``x``.
  """
  b, t, h, w, c = x.shape
  hd = c // num_heads
  fold = hd // fold_div
  if fold == 0 or t == 1:
    return x
  xh = x.reshape(b, t, h, w, num_heads, hd)
  prev = jnp.concatenate([xh[:, :1], xh[:, :-1]], axis=1)  # frame t reads t-1
  nxt = jnp.concatenate([xh[:, 1:], xh[:, -1:]], axis=1)   # frame t reads t+1
  out = jnp.concatenate(
      [prev[..., :fold], nxt[..., fold:2 * fold], xh[..., 2 * fold:]], axis=-1)
  return out.reshape(b, t, h, w, c)
