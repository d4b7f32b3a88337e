"""Frame-index sampling: pure functions of a video's length, run before JPEG decoding.

Both samplers follow the official TPS configs (mmaction2's `SampleFrames`):

* `uniform_indices`: SSv1/SSv2/Diving-48 (`frame_uniform=True`, SlowFast's SSv2 sampler):
  one frame from each of `clip_len` equal segments of the whole video.
* `dense_indices`: Kinetics (`clip_len x frame_interval`): consecutive frames
  `frame_interval` apart from one start.

Training draws are stateless functions of `seed` (an int tensor of shape [2]), so a
pipeline keyed by (seed, element index) is reproducible and resumable. With `seed=None`
the test-time positions are returned. Videos shorter than the clip repeat frames: the
uniform sampler's segments shrink below one frame, the dense sampler loops (index mod
length) as the official `out_of_bound_opt='loop'`.
"""
import tensorflow as tf


def uniform_indices(num_frames, clip_len: int, *, seed=None, num_clips: int = 1):
  """Segment-based sampling of `clip_len` frames over the whole video.

  Segment i spans [round(i * s), round((i + 1) * s)] with s = (num_frames - 1) / clip_len
  (both ends inclusive, `np.round` half-to-even, as the official code). Training picks a
  uniform frame in each segment; test picks `start + (end - start) * (2c + 1) // (2 *
  num_clips)` for view c, i.e. the official `(start + end) // 2` when num_clips == 1.

  Args:
    num_frames: int scalar tensor, frames in the video (> 0).
    clip_len: frames per clip.
    seed: int tensor [2] for training, None for test.
    num_clips: test views along time (training always returns one clip).

  Returns:
    int32 [num_clips, clip_len] (num_clips = 1 in training) frame indices.
  """
  n = tf.cast(num_frames, tf.float64)
  seg = (n - 1.0) / clip_len
  i = tf.range(clip_len, dtype=tf.float64)
  start = tf.cast(tf.math.round(seg * i), tf.int32)
  end = tf.cast(tf.math.round(seg * (i + 1.0)), tf.int32)
  if seed is not None:
    u = tf.random.stateless_uniform([clip_len], seed, dtype=tf.float32)
    width = tf.cast(end - start + 1, tf.float32)
    pick = tf.minimum(tf.cast(tf.floor(u * width), tf.int32), end - start)
    return (start + pick)[None]
  c = tf.range(num_clips, dtype=tf.int32)[:, None]
  return start[None] + (end - start)[None] * (2 * c + 1) // (2 * num_clips)


def dense_indices(num_frames, clip_len: int, frame_interval: int, *, seed=None,
                  num_clips: int = 1):
  """`clip_len` frames `frame_interval` apart, looping past the end of short videos.

  Training (mmaction's `_get_train_clips`): with span = clip_len * frame_interval and
  avg = (num_frames - span + 1) // num_clips, clip c starts at c * avg + randint(avg),
  or at 0 when avg <= 0 (the official code's rarer branches for num_clips > 1 on short
  videos are not reproduced). Test (`_get_test_clips`): avg = (num_frames - span + 1) /
  num_clips and clip c starts at int(c * avg + avg / 2), or at 0 if the video is shorter
  than span - 1 frames.

  Returns:
    int32 [num_clips, clip_len] frame indices in [0, num_frames).
  """
  n = tf.cast(num_frames, tf.int32)
  span = clip_len * frame_interval
  c = tf.range(num_clips, dtype=tf.int32)
  if seed is not None:
    avg = (n - span + 1) // num_clips
    u = tf.random.stateless_uniform([num_clips], seed, dtype=tf.float32)
    jitter = tf.cast(tf.floor(u * tf.cast(tf.maximum(avg, 1), tf.float32)), tf.int32)
    offsets = tf.where(avg > 0, c * avg + tf.minimum(jitter, avg - 1), 0)
  else:
    avg = tf.cast(n - span + 1, tf.float64) / num_clips
    starts = tf.cast(tf.cast(c, tf.float64) * avg + avg / 2.0, tf.int32)
    offsets = tf.where(n > span - 1, starts, 0)
  idx = offsets[:, None] + tf.range(clip_len, dtype=tf.int32)[None] * frame_interval
  return tf.math.floormod(idx, n)


def sample_indices(num_frames, input_config, *, seed=None, num_clips: int = 1):
  """Dispatches on `input_config.sampling` ('uniform' | 'dense'); see the two samplers."""
  if input_config.sampling == 'uniform':
    return uniform_indices(num_frames, input_config.num_frames, seed=seed,
                           num_clips=num_clips)
  if input_config.sampling == 'dense':
    return dense_indices(num_frames, input_config.num_frames, input_config.frame_interval,
                         seed=seed, num_clips=num_clips)
  raise ValueError(f"config.input.sampling={input_config.sampling!r} is not one of "
                   "['dense', 'uniform']")
