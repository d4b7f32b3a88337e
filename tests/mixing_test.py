"""Mixup / CutMix in JAX: shapes, label mass, one box over all frames, identity when off."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from tps_jax import mixing


def _config(mixup=0.0, cutmix=0.0, prob=1.0, switch=0.5):
  return ml_collections.ConfigDict({'input': dict(
      mixup_alpha=mixup, cutmix_alpha=cutmix, mix_prob=prob, mix_switch_prob=switch)})


def _batch(b=4, num_classes=5):
  video = jnp.arange(b, dtype=jnp.float32)[:, None, None, None, None] * jnp.ones(
      (b, 3, 8, 8, 3))
  targets = jax.nn.one_hot(jnp.arange(b) % num_classes, num_classes)
  return video, targets


def test_identity_when_both_are_disabled():
  video, targets = _batch()
  out_v, out_t = mixing.mix_batch(jax.random.PRNGKey(0), video, targets, _config())
  np.testing.assert_array_equal(out_v, video)
  np.testing.assert_array_equal(out_t, targets)


def test_mixup_blends_clips_and_targets_with_one_lambda():
  video, targets = _batch()
  out_v, out_t = mixing.mix_batch(jax.random.PRNGKey(1), video, targets, _config(mixup=0.8))
  assert out_v.shape == video.shape and out_t.shape == targets.shape
  np.testing.assert_allclose(out_t.sum(-1), 1.0, rtol=1e-6)
  lam = float(out_t[0, 0])  # example 0 (class 0) mixed with example 3 (class 3)
  np.testing.assert_allclose(out_v[0], lam * 0 + (1 - lam) * 3, rtol=1e-5)


def test_cutmix_pastes_one_box_through_all_frames_with_matching_lambda():
  video, targets = _batch()
  for k in range(5):
    out_v, out_t = mixing.mix_batch(jax.random.PRNGKey(k), video, targets, _config(cutmix=1.0))
    pasted = np.asarray(out_v[0, :, :, :, 0]) == 3.0  # example 0 receives example 3
    for t in range(1, 3):
      np.testing.assert_array_equal(pasted[t], pasted[0])
    np.testing.assert_allclose(out_t[0, 3], pasted[0].mean(), atol=1e-6)
    np.testing.assert_allclose(out_t.sum(-1), 1.0, rtol=1e-6)


def test_mix_prob_zero_is_identity():
  video, targets = _batch()
  out_v, out_t = mixing.mix_batch(jax.random.PRNGKey(0), video, targets,
                                  _config(mixup=0.8, cutmix=1.0, prob=0.0))
  np.testing.assert_array_equal(out_v, video)
  np.testing.assert_array_equal(out_t, targets)


def test_mix_batch_jits_with_both_methods():
  video, targets = _batch()
  config = _config(mixup=0.8, cutmix=1.0)
  fn = jax.jit(lambda rng, v, t: mixing.mix_batch(rng, v, t, config))
  out_v, out_t = fn(jax.random.PRNGKey(3), video, targets)
  assert out_v.dtype == video.dtype
  np.testing.assert_allclose(out_t.sum(-1), 1.0, rtol=1e-6)
