"""Training augmentation on device, in JAX: flip, RandAugment, normalize, random erasing.

The same semantics as the host versions in `input_pipeline.transforms` (flip, normalize,
random_erasing) and `input_pipeline.randaugment` (imgaug-style RandAugment), read their
docstrings for the reasons; here the clip arrives as uint8 after the random resized crop
and everything after it runs inside the jitted train step. Order per clip: flip ->
RandAugment -> normalize -> random erasing; every draw (flip, ops, signs, cutout place,
erasing box) is one per clip, the same on every frame. Random draws come from JAX keys, so
they are not bit-identical to tf's stateless RNG; their distributions are the same.

Dispatch. A per-clip op choice by `lax.switch` under `vmap` becomes a `select` that
computes all 15 ops for every clip. `augment_batch` therefore runs `augment_clip` in
`lax.map` (a loop over the clips), where each `lax.switch` stays a real conditional and a
clip pays only for the two ops it drew. Measured on CPU (2 shared cores, jit with full
optimisation, warm; time of augment_batch / B; 2 ops + flip + erasing on):

  B=4, T=8, 112x112:   lax.map + switch  0.005 s / clip;  vmap + switch  0.16 s / clip
  B=2, T=32, 224x224:  lax.map + switch  0.115 s / clip (mean of 8 keys; 0.06-0.18 by
                       the ops drawn; 0.022 with RandAugment off);
                       vmap + switch  6.9 s / clip
  One op at T=32, 224x224: geometric ~0.02 s, equalize 0.18 s, the others < 0.011 s.

The loop is over the clips of the array it is given: with a batch sharded over devices,
call `augment_batch` on each device's shard (`shard_map`), otherwise the partitioner may
gather the batch to loop over it.

Deviation from the TF ops: none intended. Interpolation in the geometric ops is TF's
(bilinear, each out-of-image neighbour reads the fill value). Flip and grayscale are
dm-pix's; the geometric ops sample in jnp (see `_affine` for why not dm-pix's).
"""
import dataclasses
import math
from typing import Tuple

import dm_pix as pix
import jax
import jax.numpy as jnp

OPS = ('shear_x', 'shear_y', 'translate_x', 'translate_y', 'rotate', 'posterize',
       'solarize', 'color', 'contrast', 'brightness', 'sharpness', 'autocontrast',
       'equalize', 'invert', 'cutout')
FLIP_MODES = ('no_flip_classes', 'off', 'swap_labels')
ERASING_MODES = ('const', 'pixel')
_AFFINE_FILL = 0.0    # imgaug Affine / ShearX / TranslateX / Rotate: cval=0
_CUTOUT_FILL = 128.0  # imgaug Cutout: cval=128
_MAX_MAGNITUDE = 10.0


@dataclasses.dataclass(frozen=True)
class AugmentSpec:
  """Everything the augmentation reads; hashable, so a static argument of `jit`."""
  flip_mode: str                     # 'no_flip_classes' | 'swap_labels' | 'off'
  flip_prob: float
  no_flip_classes: Tuple[int, ...]
  flip_label_map: Tuple[int, ...]    # label -> label after a flip (() : identity)
  randaugment_num_ops: int           # 0 = off
  randaugment_magnitude: float       # of 10
  random_erasing_prob: float
  random_erasing_mode: str           # 'const' | 'pixel'
  mean: Tuple[float, float, float]   # in [0, 255]
  std: Tuple[float, float, float]

  def __post_init__(self):
    _check_mode('flip_mode', self.flip_mode, FLIP_MODES)
    _check_mode('random_erasing_mode', self.random_erasing_mode, ERASING_MODES)


def _check_mode(field: str, value: str, valid):
  if value not in valid:
    raise ValueError(f'config.input.{field}={value!r} is not one of {sorted(valid)}')


def spec_from_config(input_config, flip_label_map, no_flip_classes) -> AugmentSpec:
  """The spec of `config.input` plus the data set's flip label map and no-flip classes."""
  c = input_config
  return AugmentSpec(
      flip_mode=c.flip_mode, flip_prob=float(c.flip_prob),
      no_flip_classes=tuple(int(k) for k in no_flip_classes),
      flip_label_map=tuple(int(k) for k in (() if flip_label_map is None else
                                            list(flip_label_map))),
      randaugment_num_ops=int(c.randaugment_num_ops),
      randaugment_magnitude=float(c.randaugment_magnitude),
      random_erasing_prob=float(c.random_erasing_prob),
      random_erasing_mode=c.random_erasing_mode,
      mean=tuple(float(m) for m in c.mean), std=tuple(float(s) for s in c.std))


# Flip and normalize.

def flip(video, label, do_flip, *, mode: str, no_flip_classes=(), flip_label_map=()):
  """Horizontal flip of the whole clip where `do_flip` (the drawn coin) says so.

  Modes as `transforms.flip`: 'no_flip_classes' never flips the listed classes,
  'swap_labels' maps the label of a flipped clip through `flip_label_map`, 'off'.

  Returns:
    (video, int32 label).
  """
  _check_mode('flip_mode', mode, FLIP_MODES)
  label = jnp.asarray(label, jnp.int32)
  if mode == 'off':
    return video, label
  if mode == 'no_flip_classes' and no_flip_classes:
    do_flip &= ~jnp.any(label == jnp.asarray(no_flip_classes, jnp.int32))
  if mode == 'swap_labels' and flip_label_map:
    label = jnp.where(do_flip, jnp.asarray(flip_label_map, jnp.int32)[label], label)
  return jnp.where(do_flip, pix.flip_left_right(video), video), label


def normalize(video, mean, std):
  """(x - mean) / std per channel, x in [0, 255]: float32."""
  return (video.astype(jnp.float32) - jnp.asarray(mean, jnp.float32)) / jnp.asarray(
      std, jnp.float32)


# RandAugment ops: float32 (T, H, W, 3) in [0, 255] -> same; `level` in [0, 1].

def _affine(video, a0, a1, a2, b0, b1, b2):
  """TF's projective transform [a0, a1, a2, b0, b1, b2, 0, 0] (output x, y -> input).

  Bilinear as TF's `ImageProjectiveTransformV3` with constant fill: each out-of-image
  neighbour reads the fill value, so edges blend. Here: pad the frames with one pixel of
  fill and clip the neighbour indices into the padded frame (any index past the image lands
  on the fill ring). One (H, W) sample grid for the whole clip, 4 gathers.
  dm-pix's `affine_transform` (constant mode on the padded frame, vmapped over frames)
  gives the same numbers but is slower (docs/input_pipeline.md): it interpolates in 3-D
  (8 neighbours, the channel too) and builds the grid per frame.
  """
  _, h, w, _ = video.shape
  y, x = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                      indexing='ij')
  y_in = b0 * x + b1 * y + b2 + 1  # + 1: coordinates in the padded frame
  x_in = a0 * x + a1 * y + a2 + 1
  padded = jnp.pad(video, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=_AFFINE_FILL)
  y0, x0 = jnp.floor(y_in), jnp.floor(x_in)
  wy, wx = y_in - y0, x_in - x0
  out = jnp.zeros_like(video)
  for dy, weight_y in ((0, 1 - wy), (1, wy)):
    for dx, weight_x in ((0, 1 - wx), (1, wx)):
      rows = jnp.clip(y0 + dy, 0, h + 1).astype(jnp.int32)
      cols = jnp.clip(x0 + dx, 0, w + 1).astype(jnp.int32)
      out = out + (weight_y * weight_x)[None, :, :, None] * padded[:, rows, cols, :]
  return out


def _blend(degenerate, video, factor):
  return degenerate + factor * (video - degenerate)


def _grayscale(video):
  return pix.rgb_to_grayscale(video)  # (..., 1), TF's rec601 weights


def _equalize(video):
  """PIL's `ImageOps.equalize` LUT per frame and channel, on the truncated integers."""
  t, h, w, c = video.shape
  values = video.astype(jnp.int32).transpose(0, 3, 1, 2).reshape(t * c, h * w)
  rows = jnp.arange(t * c)[:, None]
  hist = jnp.zeros((t * c, 256), jnp.int32).at[rows, values].add(1)
  last_bin = 255 - jnp.argmax(hist[:, ::-1] > 0, axis=1)
  last = jnp.take_along_axis(hist, last_bin[:, None], axis=1)
  step = (h * w - last) // 255
  lut = (jnp.cumsum(hist, axis=1) - hist + step // 2) // jnp.maximum(step, 1)
  lut = jnp.clip(lut, 0, 255)
  out = jnp.where(step > 0, jnp.take_along_axis(lut, values, axis=1), values)
  return out.reshape(t, c, h, w).transpose(0, 2, 3, 1).astype(jnp.float32)


def _sharpness_smooth(video):
  """TF's depthwise 'SAME' conv with PIL's smooth kernel [[1,1,1],[1,5,1],[1,1,1]] / 13."""
  _, h, w, _ = video.shape
  padded = jnp.pad(video, ((0, 0), (1, 1), (1, 1), (0, 0)))
  total = 4 * video
  for dy in range(3):
    for dx in range(3):
      total = total + padded[:, dy:dy + h, dx:dx + w]
  return total / 13


def cutout(video, level, top, left):
  """Fills a square of side round(0.2 * level * H) at (top, left) with 128 in every frame."""
  _, h, w, _ = video.shape
  side = jnp.round(0.2 * level * h).astype(jnp.int32)  # imgaug squared: from H
  rows = jnp.arange(h)[:, None]
  cols = jnp.arange(w)[None, :]
  inside = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
  return jnp.where(inside[None, :, :, None], _CUTOUT_FILL, video)


def cutout_position(rng, level, height: int, width: int):
  """The square's (top, left): its centre uniform over the frame, as imgaug's Cutout."""
  side = jnp.round(0.2 * level * height).astype(jnp.int32)
  u = jax.random.uniform(rng, (2,))
  top = (u[0] * height).astype(jnp.int32) - side // 2
  left = (u[1] * width).astype(jnp.int32) - side // 2
  return top, left


def apply_op(op: str, video, level, sign, rng):
  """One RandAugment op (a name of OPS) at `level` in [0, 1], `sign` +-1, as TF's `_apply`.

  Args:
    op: static op name.
    video: float32 (T, H, W, 3) in [0, 255].
    level: magnitude / 10.
    sign: +-1 direction of shear / translate / rotate.
    rng: key of the op's own draws (cutout's position).

  Returns:
    float32 (T, H, W, 3), not yet clipped.
  """
  _, height, width, _ = video.shape
  h, w = float(height), float(width)
  cy, cx = (h - 1) / 2, (w - 1) / 2
  sign = jnp.asarray(sign, jnp.float32)
  zero, one = jnp.float32(0), jnp.float32(1)
  if op in ('shear_x', 'shear_y'):
    k = sign * jnp.tan(jnp.deg2rad(17.19 * level))
    if op == 'shear_x':
      return _affine(video, one, k, -k * cy, zero, one, zero)
    return _affine(video, one, zero, zero, k, one, -k * cx)
  if op == 'translate_x':
    return _affine(video, one, zero, -sign * 0.2 * level * w, zero, one, zero)
  if op == 'translate_y':
    return _affine(video, one, zero, zero, zero, one, -sign * 0.2 * level * h)
  if op == 'rotate':
    a = sign * jnp.deg2rad(30 * level)
    c, s = jnp.cos(a), jnp.sin(a)
    return _affine(video, c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy)
  if op == 'posterize':
    bits = max(1, int(4 * level))
    mask = 256 - 2 ** (8 - bits)
    return (video.astype(jnp.int32) & mask).astype(jnp.float32)
  if op == 'solarize':
    return jnp.where(video >= 256 * level, 255 - video, video)
  factor = 1.8 * level + 0.1
  if op == 'color':
    return _blend(_grayscale(video), video, factor)
  if op == 'contrast':
    mean = jnp.mean(_grayscale(video), axis=(1, 2, 3), keepdims=True)
    return _blend(mean, video, factor)
  if op == 'brightness':
    return _blend(jnp.zeros_like(video), video, factor)
  if op == 'sharpness':
    return _blend(_sharpness_smooth(video), video, factor)
  if op == 'autocontrast':  # per frame and channel, as PIL's autocontrast(cutoff=0)
    lo = jnp.min(video, axis=(1, 2), keepdims=True)
    hi = jnp.max(video, axis=(1, 2), keepdims=True)
    scaled = (video - lo) * 255 / jnp.maximum(hi - lo, 1)
    return jnp.where(hi > lo, scaled, video)
  if op == 'equalize':
    return _equalize(video)
  if op == 'invert':
    return 255 - video
  if op == 'cutout':
    top, left = cutout_position(rng, level, height, width)
    return cutout(video, level, top, left)
  raise ValueError(f'unknown RandAugment op {op!r}; valid: {list(OPS)}')


def draw_ops(rng, num_ops: int):
  """`num_ops` distinct op indices in increasing (list) order, a sign each, a key each."""
  r_pick, r_sign, r_op = jax.random.split(rng, 3)
  picked = jnp.sort(jax.random.permutation(r_pick, len(OPS))[:num_ops])
  signs = jnp.where(jax.random.uniform(r_sign, (num_ops,)) < 0.5, -1.0, 1.0)
  return picked.astype(jnp.int32), signs.astype(jnp.float32), jax.random.split(r_op, num_ops)


def randaugment(rng, video, *, num_ops: int, magnitude: float):
  """`num_ops` distinct ops of OPS in list order, clipped to [0, 255] after each.

  Each op is a `lax.switch` branch: a real conditional, unless this is vmapped (then every
  op is computed for every clip, see the module docstring).
  """
  video = video.astype(jnp.float32)
  if num_ops <= 0:
    return video
  level = magnitude / _MAX_MAGNITUDE
  picked, signs, keys = draw_ops(rng, num_ops)
  branches = [lambda v, s, k, op=op: apply_op(op, v, level, s, k) for op in OPS]
  for i in range(num_ops):
    video = jnp.clip(jax.lax.switch(picked[i], branches, video, signs[i], keys[i]), 0, 255)
  return video


# Random erasing.

def erasing_box(area_fraction, log_aspect, u_pos, height: int, width: int):
  """timm's box from its draws: the first of the candidates that fits, placed by `u_pos`.

  Args:
    area_fraction: (attempts,) target area fractions (uniform in [0.02, 1/3]).
    log_aspect: (attempts,) log aspects (uniform in [log 0.3, -log 0.3]).
    u_pos: (2,) uniforms in [0, 1) for top and left.

  Returns:
    (top, left, box_h, box_w, found) int32 scalars and a bool.
  """
  target = area_fraction * height * width
  aspect = jnp.exp(log_aspect)
  eh = jnp.round(jnp.sqrt(target * aspect)).astype(jnp.int32)
  ew = jnp.round(jnp.sqrt(target / aspect)).astype(jnp.int32)
  fits = (eh < height) & (ew < width)
  first = jnp.argmax(fits)
  eh, ew = eh[first], ew[first]
  top = jnp.floor(u_pos[0] * (height - eh + 1).astype(jnp.float32)).astype(jnp.int32)
  left = jnp.floor(u_pos[1] * (width - ew + 1).astype(jnp.float32)).astype(jnp.int32)
  return top, left, eh, ew, jnp.any(fits)


def random_erasing(rng, video, *, prob: float, mode: str = 'const', area=(0.02, 1 / 3),
                   min_aspect: float = 0.3, max_attempts: int = 10):
  """timm's `RandomErasing` (one box) on the normalised clip, same box on every frame.

  With probability `prob`, the box is filled with 0 ('const') or with per-pixel N(0, 1)
  noise shared by all frames ('pixel'), as `transforms.random_erasing`.
  """
  _check_mode('random_erasing_mode', mode, ERASING_MODES)
  if prob <= 0:
    return video
  r_do, r_area, r_aspect, r_pos, r_noise = jax.random.split(rng, 5)
  _, height, width, _ = video.shape
  top, left, eh, ew, found = erasing_box(
      jax.random.uniform(r_area, (max_attempts,), minval=area[0], maxval=area[1]),
      jax.random.uniform(r_aspect, (max_attempts,), minval=math.log(min_aspect),
                         maxval=-math.log(min_aspect)),
      jax.random.uniform(r_pos, (2,)), height, width)
  rows = jnp.arange(height)[:, None]
  cols = jnp.arange(width)[None, :]
  inside = (rows >= top) & (rows < top + eh) & (cols >= left) & (cols < left + ew)
  inside &= (jax.random.uniform(r_do) < prob) & found
  fill = (jnp.zeros(video.shape[1:], video.dtype) if mode == 'const' else
          jax.random.normal(r_noise, video.shape[1:], video.dtype))
  return jnp.where(inside[None, :, :, None], fill[None], video)


# The whole chain.

def augment_clip(rng, video, label, spec: AugmentSpec):
  """One training clip: flip -> RandAugment -> normalize -> random erasing.

  Args:
    rng: a JAX key; every draw of this clip derives from it.
    video: uint8 (T, H, W, 3), the resized crop.
    label: int scalar.
    spec: the static `AugmentSpec`.

  Returns:
    (float32 (T, H, W, 3) normalised, int32 label).
  """
  r_flip, r_augment, r_erase = jax.random.split(rng, 3)
  video = video.astype(jnp.float32)
  if spec.flip_mode != 'off' and spec.flip_prob > 0:
    video, label = flip(video, label, jax.random.uniform(r_flip) < spec.flip_prob,
                        mode=spec.flip_mode, no_flip_classes=spec.no_flip_classes,
                        flip_label_map=spec.flip_label_map)
  video = randaugment(r_augment, video, num_ops=spec.randaugment_num_ops,
                      magnitude=spec.randaugment_magnitude)
  video = normalize(video, spec.mean, spec.std)
  video = random_erasing(r_erase, video, prob=spec.random_erasing_prob,
                         mode=spec.random_erasing_mode)
  return video, jnp.asarray(label, jnp.int32)


def augment_batch(rng, videos, labels, spec: AugmentSpec):
  """`augment_clip` on each clip with keys `jax.random.split(rng, B)`, looped by `lax.map`.

  Args:
    rng: a JAX key.
    videos: uint8 (B, T, H, W, 3).
    labels: int (B,).
    spec: the static `AugmentSpec` (`jax.jit(augment_batch, static_argnums=3)`).

  Returns:
    (float32 (B, T, H, W, 3) normalised, int32 (B,)).
  """
  keys = jax.random.split(rng, videos.shape[0])
  return jax.lax.map(lambda args: augment_clip(*args, spec), (keys, videos, labels))
