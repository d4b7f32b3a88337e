"""Decoding and per-clip augmentation (dmvr phases 3-4), as stateless TF functions.

Every random draw takes an explicit `seed` (int tensor [2]) and is the same for all
frames of a clip: one crop box, one flip, one erasing box. Videos are (T, H, W, 3).
"""
import math

import tensorflow as tf

# ImageNet statistics in [0, 255], as the official configs' `img_norm_cfg`.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def decode_frames(jpegs):
  """string [T] JPEG -> uint8 (T, H, W, 3). All frames of a video share one size."""
  return tf.map_fn(lambda j: tf.io.decode_jpeg(j, channels=3), jpegs,
                   fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))


def random_resized_crop_box(height, width, seed, scale=(0.08, 1.0),
                            ratio=(3 / 4, 4 / 3), max_attempts: int = 10):
  """mmaction's `RandomResizedCrop.get_crop_bbox`: (top, left, crop_h, crop_w) int32.

  Up to `max_attempts` (area fraction, log-uniform aspect) candidates; the first that
  fits is placed uniformly; if none fits, the centre square.
  """
  s_area, s_ratio, s_pos = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
  h = tf.cast(height, tf.float32)
  w = tf.cast(width, tf.float32)
  area = tf.random.stateless_uniform([max_attempts], s_area, scale[0], scale[1]) * h * w
  aspect = tf.exp(tf.random.stateless_uniform([max_attempts], s_ratio, math.log(ratio[0]),
                                              math.log(ratio[1])))
  cand_w = tf.cast(tf.math.round(tf.sqrt(area * aspect)), tf.int32)
  cand_h = tf.cast(tf.math.round(tf.sqrt(area / aspect)), tf.int32)
  fits = (cand_h <= height) & (cand_w <= width) & (cand_h > 0) & (cand_w > 0)
  first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
  side = tf.minimum(height, width)
  crop_h = tf.where(tf.reduce_any(fits), cand_h[first], side)
  crop_w = tf.where(tf.reduce_any(fits), cand_w[first], side)
  u = tf.random.stateless_uniform([2], s_pos)
  top = tf.cast(tf.floor(u[0] * tf.cast(height - crop_h + 1, tf.float32)), tf.int32)
  left = tf.cast(tf.floor(u[1] * tf.cast(width - crop_w + 1, tf.float32)), tf.int32)
  top = tf.where(tf.reduce_any(fits), tf.minimum(top, height - crop_h), (height - side) // 2)
  left = tf.where(tf.reduce_any(fits), tf.minimum(left, width - crop_w), (width - side) // 2)
  return tf.stack([top, left, crop_h, crop_w])


def eval_crop_boxes(height, width, num_crops: int, crop_fraction: float):
  """The test-time spatial views as a list of (top, left, crop_h, crop_w) boxes.

  1 crop: the official val pipeline, short side resized to `min_resize` then a centre
  crop of `image_size`: a centre square of side short * crop_fraction (= size /
  min_resize). 3 crops: the official `ThreeCrop` after resizing the short side to the
  crop size: three squares of the short side at the start, middle and end of the long
  side.
  """
  short = tf.minimum(height, width)
  if num_crops == 1:
    side = tf.cast(tf.math.round(tf.cast(short, tf.float32) * crop_fraction), tf.int32)
    return [tf.stack([(height - side) // 2, (width - side) // 2, side, side])]
  if num_crops == 3:
    boxes = []
    for k in range(3):
      along = lambda length: (length - short) * k // 2  # 0, middle, end
      boxes.append(tf.stack([along(height), along(width), short, short]))
    return boxes
  raise ValueError(f'config.input.test_num_crops={num_crops} is not one of [1, 3]')


def crop_and_resize(video, box, size: int):
  """Crops the same box from every frame and resizes to (size, size): float32 (T,s,s,3).

  Bilinear without antialiasing, as mmcv's `imresize` used by the official pipeline.
  """
  top, left, crop_h, crop_w = tf.unstack(box)
  crop = video[:, top:top + crop_h, left:left + crop_w]
  out = tf.image.resize(tf.cast(crop, tf.float32), (size, size), method='bilinear')
  return tf.ensure_shape(out, [None, size, size, 3])


def flip(video, label, seed, *, mode: str, prob: float, no_flip_classes, flip_label_map):
  """Horizontal flip of the whole clip with probability `prob`.

  Modes: 'no_flip_classes' (official SSv1/SSv2: clips of the direction-sensitive
  classes are never flipped), 'swap_labels' (flip every clip and map the label through
  `flip_label_map`, e.g. left->right becomes right->left), 'off'.

  Returns:
    (video, label), label possibly swapped.
  """
  if mode == 'off' or prob <= 0:
    return video, label
  do_flip = tf.random.stateless_uniform([], seed) < prob
  if mode == 'no_flip_classes':
    if no_flip_classes:
      protected = tf.reduce_any(tf.equal(tf.cast(label, tf.int64),
                                         tf.constant(no_flip_classes, tf.int64)))
      do_flip &= ~protected
  elif mode == 'swap_labels':
    swapped = tf.gather(tf.constant(flip_label_map, tf.int64), tf.cast(label, tf.int64))
    label = tf.where(do_flip, swapped, tf.cast(label, tf.int64))
  else:
    raise ValueError(f"config.input.flip_mode={mode!r} is not one of "
                     "['no_flip_classes', 'off', 'swap_labels']")
  video = tf.cond(do_flip, lambda: tf.reverse(video, axis=[2]), lambda: video)
  return video, label


def normalize(video, mean=IMAGENET_MEAN, std=IMAGENET_STD):
  """(x - mean) / std per channel, x in [0, 255]."""
  return (tf.cast(video, tf.float32) - tf.constant(mean, tf.float32)) / tf.constant(
      std, tf.float32)


def random_erasing(video, seed, *, prob: float, mode: str = 'const',
                   area=(0.02, 1 / 3), min_aspect: float = 0.3, max_attempts: int = 10):
  """timm's `RandomErasing` (one box), applied to the normalised clip, same box per frame.

  As the official `RandomErasing(probability=0.25)`: with probability `prob`, a box of
  area fraction in `area` and log-uniform aspect in [min_aspect, 1 / min_aspect] is
  filled with 0 ('const': the mean colour after normalisation) or per-pixel N(0, 1)
  noise shared by all frames ('pixel').
  """
  if prob <= 0:
    return video
  if mode not in ('const', 'pixel'):
    raise ValueError(f"config.input.random_erasing_mode={mode!r} is not one of "
                     "['const', 'pixel']")
  s_do, s_area, s_aspect, s_pos, s_noise = tf.unstack(
      tf.random.experimental.stateless_split(seed, 5))
  shape = tf.shape(video)
  height, width = shape[1], shape[2]
  h = tf.cast(height, tf.float32)
  w = tf.cast(width, tf.float32)
  target = tf.random.stateless_uniform([max_attempts], s_area, area[0], area[1]) * h * w
  aspect = tf.exp(tf.random.stateless_uniform([max_attempts], s_aspect,
                                              math.log(min_aspect), -math.log(min_aspect)))
  eh = tf.cast(tf.math.round(tf.sqrt(target * aspect)), tf.int32)
  ew = tf.cast(tf.math.round(tf.sqrt(target / aspect)), tf.int32)
  fits = (eh < height) & (ew < width)
  first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
  eh, ew = eh[first], ew[first]
  u = tf.random.stateless_uniform([2], s_pos)
  top = tf.cast(tf.floor(u[0] * tf.cast(height - eh + 1, tf.float32)), tf.int32)
  left = tf.cast(tf.floor(u[1] * tf.cast(width - ew + 1, tf.float32)), tf.int32)
  rows = tf.range(height)[:, None]
  cols = tf.range(width)[None, :]
  inside = (rows >= top) & (rows < top + eh) & (cols >= left) & (cols < left + ew)
  apply = (tf.random.stateless_uniform([], s_do) < prob) & tf.reduce_any(fits)
  inside = inside & apply
  fill = (tf.zeros_like(video[0]) if mode == 'const' else
          tf.random.stateless_normal(tf.shape(video[0]), s_noise))
  return tf.where(inside[None, :, :, None], fill[None], video)
