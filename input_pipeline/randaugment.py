"""RandAugment as the official runs apply it: imgaug's ops, the same draw on every frame.

The official SSv1/SSv2/Diving-48 configs use mmaction's `Imgaug(transforms='default')`:
imgaug `SomeOf(n=2)` of 15 ops at magnitude 9 of 10 (in list order, imgaug's default),
frozen per clip with `to_deterministic()` and applied to each frame with
`augment_image`. So, as there: the same ops and parameters on every frame; shear,
translate and rotate fill with 0 (imgaug's `cval=0` default), Cutout with 128 (its
`cval=128` default) at the same place in every frame; autocontrast and equalize (imgaug's
`pillike`, PIL's rule) use each frame's own histogram.

Deviations from the official pipeline, all of them:

* the sign of shear / translate / rotate is drawn per clip; mmaction draws it once when
  the pipeline is built (`random.choice([-1, 1])` in `default_transforms`), so each
  official run uses one fixed direction per op for its whole training;
* ops run on the float clip after the resized crop, without rounding to uint8 between
  ops (imgaug works on uint8 frames), so e.g. autocontrast's output is not truncated to
  whole grey levels;
* geometric ops interpolate bilinearly in TF (imgaug: OpenCV / skimage, ``order=1``), so
  edge pixels differ by interpolation rounding.
"""
import math

import tensorflow as tf

_AFFINE_FILL = 0.0    # imgaug Affine / ShearX / TranslateX / Rotate: cval=0
_CUTOUT_FILL = 128.0  # imgaug Cutout: cval=128
OPS = ('shear_x', 'shear_y', 'translate_x', 'translate_y', 'rotate', 'posterize',
       'solarize', 'color', 'contrast', 'brightness', 'sharpness', 'autocontrast',
       'equalize', 'invert', 'cutout')


def _affine(video, matrix):
  """Applies the output->input pixel map `matrix` (8 projective coefficients)."""
  shape = tf.shape(video)
  transforms = tf.reshape(tf.stack([tf.cast(m, tf.float32) for m in matrix]), [1, 8])
  return tf.raw_ops.ImageProjectiveTransformV3(
      images=video, transforms=tf.tile(transforms, [shape[0], 1]),
      output_shape=shape[1:3], fill_value=_AFFINE_FILL, interpolation='BILINEAR',
      fill_mode='CONSTANT')


def _blend(degenerate, video, factor):
  return degenerate + factor * (video - degenerate)


def _grayscale(video):
  return tf.image.rgb_to_grayscale(video)


def _equalize_channel(values):
  """PIL's `ImageOps.equalize` LUT for one channel of the whole clip (int32 values)."""
  hist = tf.math.bincount(values, minlength=256, maxlength=256)
  last = tf.gather(hist, tf.reduce_max(tf.where(hist > 0)))
  step = (tf.reduce_sum(hist) - last) // 255
  lut = (tf.cumsum(hist, exclusive=True) + step // 2) // tf.maximum(step, 1)
  lut = tf.clip_by_value(lut, 0, 255)
  return tf.where(step > 0, tf.gather(lut, values), values)


def _apply(op: str, video, level, sign, seed):
  """One op at `level` in [0, 1] on a float32 clip in [0, 255]."""
  shape = tf.shape(video)
  h = tf.cast(shape[1], tf.float32)
  w = tf.cast(shape[2], tf.float32)
  cy, cx = (h - 1) / 2, (w - 1) / 2
  if op in ('shear_x', 'shear_y'):
    k = sign * math.tan(math.radians(17.19 * level))
    if op == 'shear_x':
      return _affine(video, [1, k, -k * cy, 0, 1, 0, 0, 0])
    return _affine(video, [1, 0, 0, k, 1, -k * cx, 0, 0])
  if op == 'translate_x':
    return _affine(video, [1, 0, -sign * 0.2 * level * w, 0, 1, 0, 0, 0])
  if op == 'translate_y':
    return _affine(video, [1, 0, 0, 0, 1, -sign * 0.2 * level * h, 0, 0])
  if op == 'rotate':
    a = sign * math.radians(30 * level)
    c, s = tf.cos(a), tf.sin(a)
    return _affine(video, [c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy, 0, 0])
  if op == 'posterize':
    bits = max(1, int(4 * level))
    mask = tf.constant(256 - 2 ** (8 - bits), tf.uint8)
    return tf.cast(tf.bitwise.bitwise_and(tf.cast(video, tf.uint8), mask), tf.float32)
  if op == 'solarize':
    return tf.where(video >= 256 * level, 255 - video, video)
  factor = 1.8 * level + 0.1
  if op == 'color':
    return _blend(_grayscale(video), video, factor)
  if op == 'contrast':
    mean = tf.reduce_mean(_grayscale(video), axis=[1, 2, 3], keepdims=True)
    return _blend(mean, video, factor)
  if op == 'brightness':
    return _blend(tf.zeros_like(video), video, factor)
  if op == 'sharpness':
    kernel = tf.constant([[1, 1, 1], [1, 5, 1], [1, 1, 1]], tf.float32) / 13
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, 3, 1])
    smooth = tf.nn.depthwise_conv2d(video, kernel, [1, 1, 1, 1], 'SAME')
    return _blend(smooth, video, factor)
  if op == 'autocontrast':  # per frame and channel, as PIL's autocontrast(cutoff=0)
    lo = tf.reduce_min(video, axis=[1, 2], keepdims=True)
    hi = tf.reduce_max(video, axis=[1, 2], keepdims=True)
    scaled = (video - lo) * 255 / tf.maximum(hi - lo, 1)
    return tf.where(hi > lo, scaled, video)
  if op == 'equalize':  # per frame and channel, as PIL's equalize
    def frame(values):
      channels = [_equalize_channel(tf.reshape(values[..., i], [-1])) for i in range(3)]
      return tf.reshape(tf.stack(channels, axis=-1), tf.shape(values))
    values = tf.map_fn(frame, tf.cast(video, tf.int32))
    return tf.cast(values, tf.float32)
  if op == 'invert':
    return 255 - video
  if op == 'cutout':
    side = tf.cast(tf.math.round(0.2 * level * h), tf.int32)  # imgaug squared: from H
    u = tf.random.stateless_uniform([2], seed)
    top = tf.cast(u[0] * h, tf.int32) - side // 2
    left = tf.cast(u[1] * w, tf.int32) - side // 2
    rows = tf.range(shape[1])[:, None]
    cols = tf.range(shape[2])[None, :]
    inside = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
    return tf.where(inside[None, :, :, None], _CUTOUT_FILL, video)
  raise ValueError(f'unknown RandAugment op {op!r}')


def randaugment(video, seed, *, num_ops: int = 2, magnitude: float = 9,
                max_magnitude: float = 10):
  """`num_ops` distinct ops from OPS, applied in list order with one sign each per clip.

  Args:
    video: uint8 or float (T, H, W, 3) in [0, 255].
    seed: int tensor [2].
    num_ops: ops per clip (imgaug `SomeOf(n)`); 0 disables.
    magnitude: strength on the 0..max_magnitude scale (official: 9 of 10).

  Returns:
    float32 (T, H, W, 3) in [0, 255].
  """
  video = tf.cast(video, tf.float32)
  if num_ops <= 0:
    return video
  level = magnitude / max_magnitude
  s_pick, s_sign, s_op = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
  picked = tf.sort(tf.random.experimental.stateless_shuffle(tf.range(len(OPS)), s_pick)[
      :num_ops])
  signs = tf.where(tf.random.stateless_uniform([num_ops], s_sign) < 0.5, -1.0, 1.0)
  op_seeds = tf.random.experimental.stateless_split(s_op, num_ops)
  for i in range(num_ops):
    branches = [
        (lambda op=op, i=i: _apply(op, video, level, signs[i], op_seeds[i])) for op in OPS]
    video = tf.switch_case(picked[i], branches)
    video = tf.clip_by_value(video, 0.0, 255.0)
  return video
