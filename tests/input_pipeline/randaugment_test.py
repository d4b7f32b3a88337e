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
