"""Model shapes, parameter counts and generality (any T, any window)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.model_table import model_config
from tps_jax.models import build_model, count_params, validate


def _tiny(arch='tps', **overrides):
  c = model_config(arch if arch != 'tpz' else 'tps', 'tiny')
  c.arch = arch
  c.embed_dim, c.depths, c.num_heads = 16, (2, 2), (1, 2)
  c.update(overrides)
  return c


def _abstract_params(cfg, shape=(1, 32, 224, 224, 3), num_classes=400):
  model = build_model(cfg, num_classes)
  return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False))['params']


def _backbone_count(params):
  return count_params({k: v for k, v in params.items() if k != 'head'})


@pytest.mark.slow
def test_tps_tiny_backbone_has_the_official_parameter_count():
  assert _backbone_count(_abstract_params(model_config('tps', 'tiny'))) == 28_223_622


@pytest.mark.parametrize('arch', ['swin2d', 'tsm'])
def test_shifts_add_no_parameters(arch):
  tps = _abstract_params(model_config('tps', 'tiny'))
  other = model_config(arch, 'tiny')
  other.bias = 'official'  # the same table as TPS; the shifts themselves are parameter-free
  assert count_params(tps) == count_params(_abstract_params(other))


def _run(cfg, shape, seed=0):
  model = build_model(cfg, 5)
  x = jax.random.normal(jax.random.key(seed), shape)
  variables = jax.jit(lambda x: model.init(jax.random.key(1), x, train=False))(x)
  logits, out = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
  return logits, out


@pytest.mark.slow
@pytest.mark.parametrize('frames', [16, 32, 48])  # 8, 16, 24 temporal tokens
def test_relative_bias_runs_for_any_frame_count(frames):
  logits, out = _run(_tiny(bias='relative'), (1, frames, 28, 28, 3))
  assert logits.shape == (1, 5) and np.isfinite(logits).all()
  assert out['features'].shape == (1, frames // 2, 4, 4, 32)


@pytest.mark.slow
def test_relative_bias_runs_with_a_smaller_window_on_a_larger_map():
  # 4x4 windows on 32x32 tokens (and 16x16 in stage 2), 8 temporal tokens
  logits, out = _run(_tiny(bias='relative', window_size=(1, 4, 4)), (1, 16, 128, 128, 3))
  assert np.isfinite(logits).all() and out['features'].shape == (1, 8, 16, 16, 32)


@pytest.mark.slow
@pytest.mark.parametrize('frames', [2, 10, 32])  # 1, 5, 16 temporal tokens
def test_official_bias_runs_up_to_16_tokens(frames):
  logits, _ = _run(_tiny(), (1, frames, 28, 28, 3))
  assert np.isfinite(logits).all()


def test_official_bias_refuses_more_than_16_tokens_in_one_line():
  with pytest.raises(ValueError, match=r"^34 frames .* 17 temporal tokens.*bias='relative'$"):
    validate(_tiny(), num_frames=34, image_size=56)
  with pytest.raises(ValueError, match='at most 16 temporal tokens'):
    _run(_tiny(), (1, 34, 28, 28, 3))


@pytest.mark.slow
@pytest.mark.parametrize('arch', ['swin2d', 'tsm', 'video_swin'])
def test_baselines_run(arch):
  cfg = _tiny(arch)
  if arch == 'video_swin':
    cfg.window_size = (4, 7, 7)
  logits, _ = _run(cfg, (2, 16, 56, 56, 3))
  assert logits.shape == (2, 5) and np.isfinite(logits).all()


@pytest.mark.slow
def test_swin2d_treats_frames_independently():
  cfg = _tiny('swin2d', patch_size=(1, 4, 4))
  model = build_model(cfg, 5)
  x = jax.random.normal(jax.random.key(0), (1, 4, 28, 28, 3))
  v = jax.jit(lambda x: model.init(jax.random.key(1), x, train=False))(x)
  feats = jax.jit(lambda x: model.apply(v, x, train=False)[1]['features'])
  np.testing.assert_allclose(feats(x[:, ::-1])[:, ::-1], feats(x), atol=1e-5)


def test_ablation_archs_keep_one_of_tps_shifts_each():
  from tps_jax.models import swin  # pylint: disable=g-import-not-at-top
  assert swin.block_ops('tps', 4) == ('channel', 'patch', 'channel', 'patch')
  assert swin.block_ops('patch_only', 4) == ('none', 'patch', 'none', 'patch')
  assert swin.block_ops('channel_only', 4) == ('channel', 'none', 'channel', 'none')


@pytest.mark.slow
@pytest.mark.parametrize('arch', ['tps', 'patch_only', 'channel_only'])
def test_tps_and_its_ablations_depend_on_frame_order(arch):
  model = build_model(_tiny(arch, patch_size=(1, 4, 4)), 5)
  x = jax.random.normal(jax.random.key(0), (1, 8, 28, 28, 3))
  v = jax.jit(lambda x: model.init(jax.random.key(1), x, train=False))(x)
  pooled = jax.jit(lambda x: model.apply(v, x, train=False)[1]['pooled'])
  assert not np.allclose(pooled(x[:, ::-1]), pooled(x), atol=1e-4)


@pytest.mark.slow
def test_bfloat16_compute_keeps_float32_params():
  cfg = _tiny(dtype='bfloat16')
  model = build_model(cfg, 5)
  x = jnp.ones((1, 4, 28, 28, 3))
  v = jax.jit(lambda x: model.init(jax.random.key(0), x, train=False))(x)
  assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(v))
  logits, out = jax.jit(lambda v, x: model.apply(v, x, train=False))(v, x)
  assert out['features'].dtype == jnp.bfloat16 and np.isfinite(np.asarray(logits)).all()


@pytest.mark.slow
def test_remat_gives_the_same_gradients():
  x = jax.random.normal(jax.random.key(0), (1, 4, 28, 28, 3))
  base = build_model(_tiny(), 5)
  v = jax.jit(lambda x: base.init(jax.random.key(1), x, train=False))(x)

  def grads(model):
    def loss(p):
      logits, _ = model.apply({'params': p}, x, train=True, rngs={'dropout': jax.random.key(2)})
      return jnp.sum(logits ** 2)
    return jax.jit(jax.grad(loss))(v['params'])

  g0, g1 = grads(base), grads(build_model(_tiny(remat=True), 5))
  for a, b in zip(jax.tree_util.tree_leaves(g0), jax.tree_util.tree_leaves(g1)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_unknown_arch_is_a_one_line_error_listing_valid_names():
  with pytest.raises(ValueError, match=r"config.model.arch='tpz' is not one of \['channel_only', "
                     r"'patch_only', 'swin2d', 'tps', 'tsm', 'video_swin'\]"):
    validate(_tiny(arch='tpz'), 16, 56)
