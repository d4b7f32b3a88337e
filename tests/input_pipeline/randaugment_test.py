"""RandAugment over a clip: the same ops and magnitudes on every frame."""
import numpy as np
import pytest
import tensorflow as tf

from input_pipeline import randaugment


def _clip_of_identical_frames(num_frames=4):
  frame = np.random.default_rng(0).integers(0, 256, size=(24, 24, 3))
  return tf.constant(np.stack([frame] * num_frames), tf.uint8)


def test_every_frame_gets_the_same_ops():
  video = _clip_of_identical_frames()
  for k in range(12):
    out = randaugment.randaugment(video, tf.constant([k, 1], tf.int64)).numpy()
    for t in range(1, 4):
      np.testing.assert_array_equal(out[t], out[0])


def test_some_clips_are_changed():
  video = _clip_of_identical_frames()
  changed = [not np.allclose(randaugment.randaugment(video, tf.constant([k, 2], tf.int64)),
                             tf.cast(video, tf.float32)) for k in range(8)]
  assert sum(changed) >= 6


@pytest.mark.parametrize('op', randaugment.OPS)
def test_each_op_keeps_shape_and_range(op):
  video = tf.cast(_clip_of_identical_frames(2), tf.float32)
  out = randaugment._apply(op, video, 0.9, tf.constant(-1.0), tf.constant([0, 1], tf.int64))
  out = tf.clip_by_value(out, 0, 255).numpy()
  assert out.shape == (2, 24, 24, 3)
  np.testing.assert_array_equal(out[1], out[0])


def test_zero_ops_is_identity():
  video = _clip_of_identical_frames()
  np.testing.assert_array_equal(randaugment.randaugment(video, tf.constant([0, 0]), num_ops=0),
                                tf.cast(video, tf.float32))


def test_geometric_ops_fill_with_zero_and_cutout_with_128():
  """imgaug's defaults: Affine-based ops cval=0, Cutout cval=128."""
  white = tf.fill([2, 20, 20, 3], 255.0)
  moved = randaugment._apply('translate_x', white, 1.0, tf.constant(1.0),
                             tf.constant([0, 1], tf.int64)).numpy()
  assert moved[:, :, :3].max() == 0.0 and moved[:, :, -3:].min() == 255.0  # 4 px shift
  rotated = randaugment._apply('rotate', white, 1.0, tf.constant(1.0),
                               tf.constant([0, 1], tf.int64)).numpy()
  assert rotated[:, 0, 0].max() == 0.0  # a corner rotated out of the frame
  cut = randaugment._apply('cutout', white, 1.0, tf.constant(1.0),
                           tf.constant([3, 1], tf.int64)).numpy()
  assert set(np.unique(cut)) == {128.0, 255.0}
  assert (cut[0, ..., 0] == 128).sum() <= 16 and (cut[0] == cut[1]).all()  # 4x4, same place


def _frames_with_different_ranges():
  rng = np.random.default_rng(1)
  dark = rng.integers(10, 60, size=(16, 16, 3))
  bright = rng.integers(150, 250, size=(16, 16, 3))
  return np.stack([dark, bright]).astype(np.uint8)


@pytest.mark.parametrize('op', ['autocontrast', 'equalize'])
def test_autocontrast_and_equalize_are_pil_per_frame(op):
  """Each frame by its own histogram, as imgaug's pillike ops (PIL's rule) per frame."""
  from PIL import Image, ImageOps  # pylint: disable=g-import-not-at-top
  video = _frames_with_different_ranges()
  out = randaugment._apply(op, tf.constant(video, tf.float32), 0.9, tf.constant(1.0),
                           tf.constant([0, 1], tf.int64)).numpy()
  for t in range(2):
    pil = getattr(ImageOps, op)(Image.fromarray(video[t]))
    np.testing.assert_allclose(out[t], np.asarray(pil, np.float32), atol=1.0)
