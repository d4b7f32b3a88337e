"""The train and eval steps: updates, non-finite guard, accumulation, multi-view averaging."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from tps_jax import models
from tps_jax import train

NUM_CLASSES = 10


def _config(**optim_fields):
  config = test_config.get_config()
  config.model.drop_path_rate = config.model.head_dropout_rate = 0.0  # deterministic
  config.optim.update(optim_fields)
  return config


def _state(config):
  model = models.build_model(config.model, NUM_CLASSES)
  return train.create_train_state(config, model, jax.random.key(0))


def _batch(config, batch_size=4, seed=0):
  t, h, w, c = train.clip_shape(config)
  rng = np.random.RandomState(seed)
  return {'video': rng.normal(size=(batch_size, t, h, w, c)).astype(np.float32),
          'label': rng.randint(0, NUM_CLASSES, batch_size).astype(np.int32)}


@pytest.fixture(scope='module')
def compiled():
  """One state and one compiled step shared by the tests (compiles dominate their time)."""
  previous = jax.config.values['jax_disable_most_optimizations']
  jax.config.update('jax_disable_most_optimizations', True)
  config = _config()
  step = jax.jit(functools.partial(train.train_step, config=config))
  yield config, _state(config), step
  jax.config.update('jax_disable_most_optimizations', previous)


def test_step_updates_params_and_reports_metrics(compiled):
  config, state, step = compiled
  new, metrics = step(state, _batch(config), jax.random.key(1))
  assert int(new.step) == 1 and float(metrics['nonfinite']) == 0.0
  assert np.isfinite(float(metrics['loss'])) and float(metrics['grad_norm']) > 0
  assert float(metrics['learning_rate']) == pytest.approx(float(state.lr_fn(0)))
  moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), new.params, state.params)
  assert max(jax.tree.leaves(moved)) > 0


def test_non_finite_loss_leaves_the_state_unchanged(compiled):
  config, state, step = compiled
  batch = _batch(config)
  batch['video'][0, 0, 0, 0, 0] = np.nan
  new, metrics = step(state, batch, jax.random.key(1))
  assert float(metrics['nonfinite']) == 1.0
  jax.tree.map(np.testing.assert_array_equal, new.params, state.params)
  jax.tree.map(np.testing.assert_array_equal, new.opt_state, state.opt_state)


def test_gradient_accumulation_matches_the_full_batch(compiled):
  config, state, step = compiled
  batch = _batch(config, batch_size=4)
  _, full = step(state, batch, jax.random.key(1))
  config2 = _config(grad_accum_steps=2)
  _, accumulated = jax.jit(functools.partial(train.train_step, config=config2))(
      state, batch, jax.random.key(1))
  np.testing.assert_allclose(accumulated['loss'], full['loss'], rtol=1e-5)
  np.testing.assert_allclose(accumulated['grad_norm'], full['grad_norm'], rtol=1e-4)


def test_label_smoothing_targets():
  targets = train.soft_targets(jnp.array([2, 0]), 4, 0.1)
  np.testing.assert_allclose(targets, [[.025, .025, .925, .025], [.925, .025, .025, .025]],
                             rtol=1e-6)
  np.testing.assert_array_equal(train.soft_targets(jnp.array([1]), 3, 0.0), [[0, 1, 0]])


def test_eval_step_averages_softmax_scores_over_views(compiled):
  config, state, _ = compiled
  config = _config()
  clips = _batch(config, batch_size=6)['video'].reshape((2, 3) + train.clip_shape(config))
  batch = {'video': clips, 'label': np.array([1, 2], np.int32), 'mask': np.array([True, False])}
  out = jax.jit(functools.partial(train.eval_step, config=config))(state, batch)
  logits = state.apply_fn({'params': state.params}, clips.reshape((6,) + clips.shape[2:]))[0]
  logits = logits.reshape(2, 3, -1)
  np.testing.assert_allclose(out['probs'], jax.nn.softmax(logits).mean(1), atol=1e-6)
  np.testing.assert_allclose(out['logits'], logits.mean(1), atol=1e-5)
  np.testing.assert_array_equal(out['mask'], [True, False])
  config.eval.views_one_by_one = True
  one_by_one = jax.jit(functools.partial(train.eval_step, config=config))(state, batch)
  np.testing.assert_allclose(one_by_one['probs'], out['probs'], atol=1e-6)


def test_abstract_state_has_the_real_state_structure_and_shardings():
  config = _config()
  model = models.build_model(config.model, NUM_CLASSES)
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ('data', 'fsdp'))
  abstract = train.create_train_state(config, model, jax.random.key(0), mesh=mesh, abstract=True)
  real = train.create_train_state(config, model, jax.random.key(0), mesh=mesh)
  paths = lambda tree: [(p, x.shape) for p, x in jax.tree_util.tree_leaves_with_path(tree)]
  assert paths(abstract) == paths(real)
  assert all(isinstance(x.sharding, jax.sharding.NamedSharding) for x in jax.tree.leaves(real))


def test_schedule_steps_from_epochs_or_explicit():
  config = _config()
  config.num_train_steps, config.num_epochs, config.batch_size = -1, 2.0, 4
  assert train.schedule_steps(config, 10) == (5, 2.5)
  config.num_train_steps = 7
  assert train.schedule_steps(config, 10) == (7, 2.5)



def test_bfloat16_remat_and_mixing_train_together(compiled):
  """The compute-dtype, rematerialisation and mixup/cutmix options in one step."""
  _, state, _ = compiled
  config = _config()
  config.model.dtype, config.model.remat = 'bfloat16', True
  config.input.mixup_alpha, config.input.cutmix_alpha = 0.8, 1.0
  model = models.build_model(config.model, NUM_CLASSES)
  state = state.replace(apply_fn=model.apply)  # same parameters, bf16 + remat compute
  new, metrics = jax.jit(functools.partial(train.train_step, config=config))(
      state, _batch(config), jax.random.key(1))
  assert float(metrics['nonfinite']) == 0.0 and np.isfinite(float(metrics['loss']))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(new.params))
