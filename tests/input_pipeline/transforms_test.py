"""Per-clip augmentation: one box / one flip / one erasing for every frame."""
import numpy as np
import pytest
import tensorflow as tf

from input_pipeline import transforms

FLIP_MAP = [1, 0, 2, 3]


def _seed(k):
  return tf.constant([k, 11], tf.int64)


def _ramp_video(num_frames=5, height=40, width=60):
  """Frame t = a fixed random image + 3 t: any per-frame difference shows in the crop."""
  base = np.random.default_rng(0).uniform(0, 200, size=(height, width, 3))
  return tf.constant(np.stack([base + 3 * t for t in range(num_frames)]), tf.float32)


def test_crop_and_resize_uses_the_same_box_for_every_frame():
  video = _ramp_video()
  box = transforms.random_resized_crop_box(40, 60, _seed(1))
  out = transforms.crop_and_resize(video, box, 16).numpy()
  for t in range(1, 5):
    np.testing.assert_allclose(out[t] - out[0], 3.0 * t, atol=1e-3)


def test_random_resized_crop_boxes_lie_inside_the_image():
  for k in range(50):
    top, left, h, w = transforms.random_resized_crop_box(40, 60, _seed(k), (0.3, 1.0)).numpy()
    assert top >= 0 and left >= 0 and top + h <= 40 and left + w <= 60
    assert 0.3 * 0.7 <= h * w / (40 * 60) <= 1.0


def test_random_resized_crop_falls_back_to_the_centre_square():
  # An aspect ratio of 3-4 can never fit a full-area crop of a square image.
  box = transforms.random_resized_crop_box(32, 32, _seed(0), (1.0, 1.0), (3.0, 4.0))
  np.testing.assert_array_equal(box, [0, 0, 32, 32])


def test_three_test_crops_tile_the_long_side():
  boxes = [b.numpy().tolist() for b in transforms.eval_crop_boxes(64, 100, 3, 0.875)]
  assert boxes == [[0, 0, 64, 64], [0, 18, 64, 64], [0, 36, 64, 64]]


def test_single_test_crop_is_the_centre_of_the_resized_short_side():
  (box,) = transforms.eval_crop_boxes(64, 100, 1, 224 / 256)
  np.testing.assert_array_equal(box, [4, 22, 56, 56])


def _flip(label, mode, prob=1.0):
  video = _ramp_video(num_frames=2)
  out, new_label = transforms.flip(video, tf.constant(label, tf.int64), _seed(0), mode=mode,
                                   prob=prob, no_flip_classes=(0, 1),
                                   flip_label_map=FLIP_MAP)
  flipped = np.array_equal(out.numpy(), video.numpy()[:, :, ::-1])
  return flipped, int(new_label)


def test_no_flip_classes_are_never_flipped():
  assert _flip(0, 'no_flip_classes') == (False, 0)
  assert _flip(1, 'no_flip_classes') == (False, 1)


def test_other_classes_are_flipped_with_their_label_kept():
  assert _flip(2, 'no_flip_classes') == (True, 2)


def test_swap_labels_flips_and_maps_mirrored_labels():
  assert _flip(0, 'swap_labels') == (True, 1)
  assert _flip(1, 'swap_labels') == (True, 0)
  assert _flip(3, 'swap_labels') == (True, 3)


def test_flip_off_and_zero_probability_are_identity():
  assert _flip(2, 'off') == (False, 2)
  assert _flip(2, 'swap_labels', prob=0.0) == (False, 2)


def test_flip_applies_to_about_half_the_clips():
  # Label 0 becomes 1 exactly when the clip is flipped.
  labels = [int(transforms.flip(tf.zeros([1, 2, 2, 3]), tf.constant(0, tf.int64), _seed(k),
                                mode='swap_labels', prob=0.5, no_flip_classes=(),
                                flip_label_map=FLIP_MAP)[1]) for k in range(200)]
  assert 70 < sum(labels) < 130


def test_unknown_flip_mode_raises():
  with pytest.raises(ValueError, match='flip_mode'):
    _flip(0, 'vertical')


def test_random_erasing_erases_one_box_shared_by_all_frames():
  video = tf.ones([4, 32, 32, 3])
  for k in range(10):
    out = transforms.random_erasing(video, _seed(k), prob=1.0).numpy()
    erased = out[0, :, :, 0] == 0
    for t in range(4):
      np.testing.assert_array_equal(out[t], out[0])
    assert 0.02 * 0.5 <= erased.mean() <= 1 / 3 + 0.05
    rows, cols = np.nonzero(erased)
    assert erased[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()


def test_random_erasing_with_zero_probability_is_identity():
  video = tf.ones([2, 8, 8, 3])
  np.testing.assert_array_equal(transforms.random_erasing(video, _seed(0), prob=0.0), video)


def test_normalize_uses_imagenet_statistics():
  out = transforms.normalize(tf.constant([[[[123.675, 116.28 + 57.12, 0.0]]]]))
  np.testing.assert_allclose(out.numpy().ravel(), [0.0, 1.0, -103.53 / 57.375], rtol=1e-5)


def test_decode_frames_decodes_every_jpeg():
  frames = tf.io.encode_jpeg(tf.zeros([8, 8, 3], tf.uint8))
  out = transforms.decode_frames(tf.stack([frames] * 3))
  assert out.shape == (3, 8, 8, 3) and out.dtype == tf.uint8
