"""Frame-index sampling: exact indices of the official SampleFrames protocols."""
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from input_pipeline import sampling


def _seed(k):
  return tf.constant([k, 7], tf.int64)


def test_uniform_test_indices_are_segment_middles():
  # 32 frames, 8 segments of (32 - 1) / 8 = 3.875: starts 0 4 8 12 16 19 23 27.
  np.testing.assert_array_equal(sampling.uniform_indices(32, 8),
                                [[2, 6, 10, 14, 17, 21, 25, 29]])


def test_uniform_test_indices_on_a_short_video_repeat_frames():
  np.testing.assert_array_equal(sampling.uniform_indices(3, 8), [[0, 0, 0, 1, 1, 1, 2, 2]])


def test_uniform_multi_clip_test_views_split_each_segment():
  np.testing.assert_array_equal(
      sampling.uniform_indices(32, 8, num_clips=2),
      [[1, 5, 9, 13, 16, 20, 24, 28], [3, 7, 11, 15, 18, 22, 26, 30]])


@pytest.mark.parametrize('num_frames', [1, 5, 16, 45])
def test_uniform_train_indices_stay_in_their_segments(num_frames):
  seg = (num_frames - 1) / 16
  starts = np.round(seg * np.arange(16))
  ends = np.round(seg * np.arange(1, 17))
  for k in range(30):
    got = sampling.uniform_indices(num_frames, 16, seed=_seed(k)).numpy()[0]
    assert np.all((got >= starts) & (got <= ends)), got


def test_uniform_train_indices_reach_both_segment_ends():
  draws = np.stack([sampling.uniform_indices(32, 8, seed=_seed(k)).numpy()[0]
                    for k in range(200)])
  np.testing.assert_array_equal(draws.min(0), [0, 4, 8, 12, 16, 19, 23, 27])
  np.testing.assert_array_equal(draws.max(0), [4, 8, 12, 16, 19, 23, 27, 31])


def test_dense_test_indices_are_the_centre_clip():
  np.testing.assert_array_equal(sampling.dense_indices(100, 8, 2),
                                [np.arange(42, 58, 2)])


def test_dense_multi_clip_test_offsets_follow_mmaction():
  # avg = (100 - 16 + 1) / 4 = 21.25; offsets int(c * avg + avg / 2).
  got = sampling.dense_indices(100, 8, 2, num_clips=4).numpy()
  np.testing.assert_array_equal(got[:, 0], [10, 31, 53, 74])
  np.testing.assert_array_equal(np.diff(got, axis=1), 2)


def test_dense_short_video_loops():
  np.testing.assert_array_equal(sampling.dense_indices(10, 8, 2), [[0, 2, 4, 6, 8, 0, 2, 4]])
  np.testing.assert_array_equal(sampling.dense_indices(10, 8, 2, seed=_seed(1)),
                                [[0, 2, 4, 6, 8, 0, 2, 4]])


def test_dense_train_start_covers_every_valid_offset():
  starts = {int(sampling.dense_indices(20, 4, 2, seed=_seed(k)).numpy()[0, 0])
            for k in range(300)}
  assert starts == set(range(20 - 8 + 1))


def test_train_sampling_is_a_function_of_the_seed():
  a = sampling.uniform_indices(50, 16, seed=_seed(3))
  b = sampling.uniform_indices(50, 16, seed=_seed(3))
  c = sampling.uniform_indices(50, 16, seed=_seed(4))
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


def test_unknown_sampling_mode_raises():
  cfg = ml_collections.ConfigDict(dict(sampling='random', num_frames=8, frame_interval=1))
  with pytest.raises(ValueError, match='config.input.sampling'):
    sampling.sample_indices(10, cfg)
