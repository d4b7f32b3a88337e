"""On-device augmentation (tps_jax.augment) against the TF host versions, op by op.

Random draws are JAX's, not tf's: where a TF function draws, the test feeds the JAX
function TF's own draws (flip coin, cutout position, erasing candidates) and compares
exactly; the draws themselves are tested by their distributions, with 5-sigma binomial
bounds (a flake rate far below 1e-5 per bound).
"""
import itertools
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from configs import data_table
from input_pipeline import randaugment as tf_randaugment
from input_pipeline import transforms
from tps_jax import augment

LEVEL = 0.9  # the official magnitude 9 of 10
MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


def _spec(**overrides):
  fields = dict(flip_mode='no_flip_classes', flip_prob=0.5, no_flip_classes=(),
                flip_label_map=(), randaugment_num_ops=2, randaugment_magnitude=9.0,
                random_erasing_prob=0.25, random_erasing_mode='const', mean=MEAN, std=STD)
  fields.update(overrides)
  return augment.AugmentSpec(**fields)


def _video(t=2, h=16, w=20):
  """Random integers in [0, 255] (float32), with a flat patch and one constant channel."""
  v = np.random.RandomState(0).randint(0, 256, (t, h, w, 3)).astype(np.float32)
  v[:, :3, :5] = 37.0
  v[-1, :, :, 2] = 77.0  # autocontrast's hi == lo and equalize's step == 0 branches
  return v


def _tf_seed(k):
  return tf.constant([k, 7], tf.int64)


# RandAugment ops.

# Geometric ops: both sides sample bilinearly with TF's edge rule (an out-of-image
# neighbour reads the fill), so the only difference is float32 rounding of the sample
# coordinates (computed in another order): ~1e-5 px of a slope of at most 255 / px,
# measured max 5e-4. 1e-2 on [0, 255] is far below one grey level yet catches any
# off-by-one, half-pixel shift or wrong fill (all >= ~1). Other ops: float32 rounding only.
TOLERANCE = {'shear_x': 1e-2, 'shear_y': 1e-2, 'translate_x': 1e-2, 'translate_y': 1e-2,
             'rotate': 1e-2}


@pytest.mark.parametrize('sign', [-1.0, 1.0])
@pytest.mark.parametrize('op', [op for op in augment.OPS if op != 'cutout'])
def test_op_equals_the_tf_op(op, sign):
  video = _video()
  expected = tf_randaugment._apply(op, tf.constant(video), LEVEL, tf.constant(sign),
                                   _tf_seed(0)).numpy()
  got = np.asarray(augment.apply_op(op, jnp.asarray(video), LEVEL, sign,
                                    jax.random.PRNGKey(0)))
  assert got.dtype == np.float32 and got.shape == video.shape
  np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE.get(op, 1e-3))
  assert not np.allclose(got, video, atol=1.0)  # the op does something at this level


def test_equalize_equals_the_tf_op_with_a_lut_step_above_one():
  # 32 x 32 frames with a skewed histogram: PIL's step (pixels / 255) is 4, so its
  # rounding term (step // 2) matters; 16 x 20 frames have step 1.
  rng = np.random.RandomState(1)
  video = (255 * rng.uniform(size=(2, 32, 32, 3)) ** 2).astype(np.float32)
  video[1, :, :, 0] = 200.0  # a constant channel: step 0, unchanged
  expected = tf_randaugment._apply('equalize', tf.constant(video), LEVEL, 1.0,
                                   _tf_seed(0)).numpy()
  got = np.asarray(augment.apply_op('equalize', jnp.asarray(video), LEVEL, 1.0,
                                    jax.random.PRNGKey(0)))
  np.testing.assert_array_equal(got, expected)
  np.testing.assert_array_equal(got[1, :, :, 0], 200.0)


def test_cutout_equals_the_tf_op_at_the_tf_position():
  video = _video(h=20, w=16)
  seed = _tf_seed(3)
  expected = tf_randaugment._apply('cutout', tf.constant(video), LEVEL, 1.0, seed).numpy()
  side = round(0.2 * LEVEL * 20)  # TF's position rule, from its own uniforms
  u = tf.random.stateless_uniform([2], seed).numpy()
  top, left = int(u[0] * 20) - side // 2, int(u[1] * 16) - side // 2
  got = np.asarray(augment.cutout(jnp.asarray(video), LEVEL, top, left))
  np.testing.assert_array_equal(got, expected)
  assert (got == 128).sum() >= side  # something was filled


def test_cutout_fills_one_square_of_128_at_the_same_place_in_every_frame():
  video = np.zeros((3, 40, 40, 3), np.float32)
  side = round(0.2 * LEVEL * 40)
  for k in range(20):
    out = np.asarray(augment.apply_op('cutout', jnp.asarray(video), LEVEL, 1.0,
                                      jax.random.PRNGKey(k)))
    filled = out == 128
    np.testing.assert_array_equal(filled, filled[:1].repeat(3, 0))
    rows = np.flatnonzero(filled[0, :, :, 0].any(1))
    cols = np.flatnonzero(filled[0, :, :, 0].any(0))
    # A square of `side` clipped by the frame edges (its centre is inside the frame).
    assert 1 <= len(rows) <= side and 1 <= len(cols) <= side
    assert filled[0, :, :, 0].sum() == len(rows) * len(cols)
    assert (len(rows) == side or rows[0] == 0 or rows[-1] == 39)


def test_randaugment_applies_the_drawn_ops_in_list_order_with_clipping():
  video = jnp.asarray(_video())
  for k in range(6):
    rng = jax.random.PRNGKey(k)
    picked, signs, keys = augment.draw_ops(rng, 2)
    expected = video
    for i in range(2):
      expected = jnp.clip(augment.apply_op(augment.OPS[int(picked[i])], expected, LEVEL,
                                           signs[i], keys[i]), 0, 255)
    got = augment.randaugment(rng, video, num_ops=2, magnitude=9.0)
    np.testing.assert_allclose(got, expected, atol=1e-4)
  off = augment.randaugment(rng, video.astype(jnp.uint8), num_ops=0, magnitude=9.0)
  assert off.dtype == jnp.float32
  np.testing.assert_array_equal(off, video)


def test_unknown_op_names_the_valid_ones():
  with pytest.raises(ValueError, match='shear_x'):
    augment.apply_op('blur', jnp.zeros((1, 4, 4, 3)), LEVEL, 1.0, jax.random.PRNGKey(0))


# Flip and normalize.

@pytest.mark.parametrize('mode, label, flip_coin', [
    ('no_flip_classes', 2, True), ('no_flip_classes', 1, True), ('no_flip_classes', 2, False),
    ('swap_labels', 0, True), ('swap_labels', 0, False), ('swap_labels', 3, True),
    ('off', 0, True)])
def test_flip_equals_the_tf_flip(mode, label, flip_coin):
  video = _video()
  flip_map, no_flip = [1, 0, 2, 3], (1,)
  # A TF seed whose coin (uniform < 0.5) is `flip_coin`; the JAX flip gets that coin.
  seed = next(_tf_seed(k) for k in range(100)
              if (tf.random.stateless_uniform([], _tf_seed(k)).numpy() < 0.5) == flip_coin)
  expected_v, expected_l = transforms.flip(
      tf.constant(video), tf.constant(label, tf.int64), seed, mode=mode, prob=0.5,
      no_flip_classes=no_flip, flip_label_map=flip_map)
  got_v, got_l = augment.flip(jnp.asarray(video), label, jnp.asarray(flip_coin), mode=mode,
                              no_flip_classes=no_flip, flip_label_map=tuple(flip_map))
  np.testing.assert_array_equal(got_v, expected_v.numpy())
  assert got_l.dtype == jnp.int32 and int(got_l) == int(expected_l)
  flipped = not np.array_equal(np.asarray(got_v), video)
  assert flipped == (flip_coin and mode != 'off' and not (mode == 'no_flip_classes' and
                                                          label in no_flip))


def test_normalize_equals_the_tf_normalize():
  video = _video()
  np.testing.assert_allclose(augment.normalize(jnp.asarray(video, jnp.uint8), MEAN, STD),
                             transforms.normalize(tf.constant(video), MEAN, STD).numpy(),
                             rtol=1e-6, atol=1e-6)


# Random erasing.

@pytest.mark.parametrize('height, width', [(20, 24), (6, 5)])
def test_erasing_box_equals_the_tf_box_from_the_tf_draws(height, width):
  # 6 x 5 frames: candidates as tall / wide as the frame are common (the `fits` edge),
  # and sometimes no candidate fits (no erasing).
  video = tf.ones((2, height, width, 3))
  outcomes = set()
  for k in range(30):
    seed = _tf_seed(k)
    expected = transforms.random_erasing(video, seed, prob=1.0).numpy()[0, :, :, 0] == 0
    # The draws of transforms.random_erasing, in its order.
    _, s_area, s_aspect, s_pos, _ = tf.unstack(tf.random.experimental.stateless_split(seed, 5))
    area = tf.random.stateless_uniform([10], s_area, 0.02, 1 / 3).numpy()
    aspect = tf.random.stateless_uniform([10], s_aspect, math.log(0.3), -math.log(0.3)).numpy()
    u = tf.random.stateless_uniform([2], s_pos).numpy()
    top, left, eh, ew, found = augment.erasing_box(area, aspect, u, height, width)
    got = np.zeros((height, width), bool)
    if found:
      got[int(top):int(top) + int(eh), int(left):int(left) + int(ew)] = True
    np.testing.assert_array_equal(got, expected)
    outcomes.add(bool(found))
  assert True in outcomes


def test_erasing_boxes_respect_the_area_and_aspect_limits():
  size = 224  # large, so that rounding to whole pixels moves area and aspect by < 2%

  def box(rng):
    r_area, r_aspect, r_pos = jax.random.split(rng, 3)
    return augment.erasing_box(
        jax.random.uniform(r_area, (10,), minval=0.02, maxval=1 / 3),
        jax.random.uniform(r_aspect, (10,), minval=math.log(0.3), maxval=-math.log(0.3)),
        jax.random.uniform(r_pos, (2,)), size, size)

  top, left, eh, ew, found = map(np.asarray, jax.vmap(box)(
      jax.random.split(jax.random.PRNGKey(0), 2000)))
  assert found.all()
  area, aspect = eh * ew / size ** 2, eh / ew
  assert area.min() >= 0.02 * 0.98 and area.max() <= (1 / 3) * 1.02
  assert area.max() > 0.3 and area.min() < 0.03  # the whole range is used
  assert aspect.min() >= 0.3 * 0.98 and aspect.max() <= (1 / 0.3) * 1.02
  assert aspect.min() < 0.35 and aspect.max() > 3.0
  assert (top >= 0).all() and (left >= 0).all()
  assert (top + eh <= size).all() and (left + ew <= size).all()


@pytest.mark.parametrize('mode', ['const', 'pixel'])
def test_random_erasing_fills_one_box_through_all_frames(mode):
  video = jnp.full((3, 16, 16, 3), 5.0)
  for k in range(10):
    out = np.asarray(augment.random_erasing(jax.random.PRNGKey(k), video, prob=1.0, mode=mode))
    erased = out != 5.0
    np.testing.assert_array_equal(erased, erased[:1].repeat(3, 0))  # same box
    np.testing.assert_array_equal(out, out[:1].repeat(3, 0))        # same fill
    assert erased.any()
    if mode == 'const':
      assert (out[erased] == 0).all()
  noise = out[erased]
  if mode == 'pixel':
    assert len(np.unique(noise)) > noise.size // 3 // 2
    assert abs(noise.mean()) < 0.5 and 0.6 < noise.std() < 1.4


def test_bad_modes_raise_with_the_config_field_name():
  with pytest.raises(ValueError, match=r'config\.input\.flip_mode'):
    _spec(flip_mode='sometimes')
  with pytest.raises(ValueError, match=r'config\.input\.random_erasing_mode'):
    _spec(random_erasing_mode='blur')
  with pytest.raises(ValueError, match=r'config\.input\.random_erasing_mode'):
    augment.random_erasing(jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 3)), prob=0.5,
                           mode='blur')


# Distributions of the draws.

def _within(count, n, p, sigmas=5.0):
  return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_two_distinct_ops_per_clip_each_with_probability_two_in_fifteen():
  n = 2000
  picked, signs, _ = jax.vmap(lambda k: augment.draw_ops(k, 2))(
      jax.random.split(jax.random.PRNGKey(0), n))
  picked, signs = np.asarray(picked), np.asarray(signs)
  assert picked.shape == (n, 2) and (picked[:, 0] < picked[:, 1]).all()  # distinct, in order
  for op in range(len(augment.OPS)):
    assert _within((picked == op).any(1).sum(), n, 2 / 15), augment.OPS[op]
  pairs = {tuple(p) for p in picked}
  assert pairs == set(itertools.combinations(range(15), 2))  # every pair can occur
  assert set(np.unique(signs)) == {-1.0, 1.0}
  assert _within((signs > 0).sum(), 2 * n, 0.5)


def _run_batch(spec, videos, labels, seed=0):
  return jax.jit(augment.augment_batch, static_argnums=3)(
      jax.random.PRNGKey(seed), jnp.asarray(videos), jnp.asarray(labels), spec)


def test_flip_rate_is_flip_prob_and_no_flip_classes_never_flip():
  n, prob = 8000, 0.3
  ramp = np.arange(8, dtype=np.uint8)[None, None, :, None] * np.ones((1, 2, 8, 3), np.uint8)
  videos, labels = np.repeat(ramp[None], n, 0), np.arange(n) % 2  # class 1: no flip
  spec = _spec(flip_prob=prob, no_flip_classes=(1,), randaugment_num_ops=0,
               random_erasing_prob=0.0, mean=(0, 0, 0), std=(1, 1, 1))
  out, out_labels = _run_batch(spec, videos, labels)
  flipped = np.asarray(out[:, 0, 0, 0, 0] == 7)
  assert np.asarray(out[:, 0, 0, :, 0])[flipped].tolist() == [list(range(7, -1, -1))] * int(
      flipped.sum())
  np.testing.assert_array_equal(out_labels, labels)
  assert not flipped[labels == 1].any()
  assert _within(flipped[labels == 0].sum(), n // 2, prob)


def test_swap_labels_flips_at_flip_prob_and_swaps_exactly_the_flipped():
  n, prob = 8000, 0.5
  ramp = np.arange(8, dtype=np.uint8)[None, None, :, None] * np.ones((1, 2, 8, 3), np.uint8)
  videos, labels = np.repeat(ramp[None], n, 0), np.arange(n) % 3
  spec = _spec(flip_mode='swap_labels', flip_prob=prob, flip_label_map=(1, 0, 2),
               randaugment_num_ops=0, random_erasing_prob=0.0, mean=(0, 0, 0), std=(1, 1, 1))
  out, out_labels = _run_batch(spec, videos, labels)
  flipped = np.asarray(out[:, 0, 0, 0, 0] == 7)
  np.testing.assert_array_equal(out_labels, np.where(flipped, np.array([1, 0, 2])[labels],
                                                     labels))
  assert _within(flipped.sum(), n, prob)


def test_erasing_rate_is_its_prob():
  n, prob = 8000, 0.25
  videos, labels = np.full((n, 1, 16, 16, 3), 9, np.uint8), np.zeros(n)
  spec = _spec(flip_mode='off', randaugment_num_ops=0, random_erasing_prob=prob,
               mean=(0, 0, 0), std=(1, 1, 1))
  out, _ = _run_batch(spec, videos, labels)
  erased = np.asarray((out == 0).any(axis=(1, 2, 3, 4)))
  assert _within(erased.sum(), n, prob)


# The batch.

def test_augment_batch_shapes_dtypes_and_per_clip_draws():
  spec = _spec(flip_mode='off', random_erasing_prob=0.5)
  video = np.random.RandomState(1).randint(0, 256, (2, 16, 16, 3)).astype(np.uint8)
  videos, labels = np.repeat(video[None], 6, 0), np.arange(6, dtype=np.int64)
  rng = jax.random.PRNGKey(3)
  jitted = jax.jit(augment.augment_batch, static_argnums=3)
  out, out_labels = jitted(rng, videos, labels, spec)
  assert out.shape == (6, 2, 16, 16, 3) and out.dtype == jnp.float32
  assert out_labels.shape == (6,) and out_labels.dtype == jnp.int32
  out = np.asarray(out)
  assert len({out[i].tobytes() for i in range(6)}) == 6  # each clip its own draws
  again, _ = augment.augment_batch(rng, jnp.asarray(videos), jnp.asarray(labels), spec)
  np.testing.assert_allclose(again, out, atol=1e-5)  # same key, same clips (jit or not)
  other, _ = jitted(jax.random.PRNGKey(4), videos, labels, spec)
  assert not np.allclose(other, out)
  keys = jax.random.split(rng, 6)
  clip, label = augment.augment_clip(keys[2], jnp.asarray(videos[2]), 2, spec)
  np.testing.assert_allclose(clip, out[2], atol=1e-5)
  assert label.dtype == jnp.int32 and int(label) == 2


def test_all_off_is_normalize_only():
  spec = _spec(flip_mode='off', randaugment_num_ops=0, random_erasing_prob=0.0)
  video = np.random.RandomState(2).randint(0, 256, (2, 2, 8, 8, 3)).astype(np.uint8)
  out, _ = augment.augment_batch(jax.random.PRNGKey(0), video, np.zeros(2), spec)
  np.testing.assert_allclose(out, (video - np.array(MEAN)) / np.array(STD), rtol=1e-5,
                             atol=1e-5)


def test_each_clip_computes_only_its_own_ops():
  """The op choice stays a conditional inside the loop over clips (not a 15-way select)."""
  spec = _spec()
  jaxpr = jax.make_jaxpr(lambda r, v, l: augment.augment_batch(r, v, l, spec))(
      jax.random.PRNGKey(0), jnp.zeros((2, 1, 8, 8, 3), jnp.uint8), jnp.zeros(2, jnp.int32))
  scans = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == 'scan']
  assert len(scans) == 1
  inner = scans[0].params['jaxpr'].jaxpr
  conds = [e for e in inner.eqns if e.primitive.name == 'cond']
  assert len(conds) == 2 and all(len(e.params['branches']) == 15 for e in conds)


def test_spec_from_config_reads_the_input_section():
  c = data_table.input_config('ssv2')
  c.randaugment_num_ops, c.random_erasing_prob = 2, 0.25
  spec = augment.spec_from_config(c, np.array([1, 0, 2]), [86, 87])
  assert spec == _spec(flip_prob=c.flip_prob, no_flip_classes=(86, 87), flip_label_map=(1, 0, 2))
  hash(spec)
  c.flip_mode = 'mirror'
  with pytest.raises(ValueError, match=r'config\.input\.flip_mode'):
    augment.spec_from_config(c, [], [])
  bad = ml_collections.ConfigDict(dict(c.to_dict(), flip_mode='off', random_erasing_mode='x'))
  with pytest.raises(ValueError, match=r'config\.input\.random_erasing_mode'):
    augment.spec_from_config(bad, [], [])
