"""The train and eval steps: updates, non-finite guard, accumulation, multi-view averaging."""
import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from tps_jax import models
from tps_jax import run_config
from tps_jax import steps
from tps_jax import train

NUM_CLASSES = 10


def _config(**optim_fields):
  config = test_config.get_config()
  config.model.drop_path_rate = config.model.head_dropout_rate = 0.0  # deterministic
  config.optim.update(optim_fields)
  return config


def _state(config):
  model = models.build_model(config.model, NUM_CLASSES)
  return steps.create_train_state(config, model, jax.random.key(0))


def _batch(config, batch_size=4, seed=0):
  t, h, w, c = steps.clip_shape(config)
  rng = np.random.RandomState(seed)
  return {'video': rng.normal(size=(batch_size, t, h, w, c)).astype(np.float32),
          'label': rng.randint(0, NUM_CLASSES, batch_size).astype(np.int32)}


@pytest.fixture(scope='module')
def compiled():
  """One state and one compiled step shared by the tests (compiles dominate their time)."""
  previous = jax.config.values['jax_disable_most_optimizations']
  jax.config.update('jax_disable_most_optimizations', True)
  config = _config()
  step = jax.jit(functools.partial(steps.train_step, config=config))
  yield config, _state(config), step
  jax.config.update('jax_disable_most_optimizations', previous)


@pytest.mark.slow
def test_step_updates_params_and_reports_metrics(compiled):
  config, state, step = compiled
  new, metrics = step(state, _batch(config), jax.random.key(1))
  assert int(new.step) == 1 and float(metrics['nonfinite']) == 0.0
  assert np.isfinite(float(metrics['loss'])) and float(metrics['grad_norm']) > 0
  assert float(metrics['learning_rate']) == pytest.approx(float(state.lr_fn(0)))
  moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), new.params, state.params)
  assert max(jax.tree.leaves(moved)) > 0


@pytest.mark.slow
def test_non_finite_loss_leaves_the_state_unchanged(compiled):
  config, state, step = compiled
  batch = _batch(config)
  batch['video'][0, 0, 0, 0, 0] = np.nan
  new, metrics = step(state, batch, jax.random.key(1))
  assert float(metrics['nonfinite']) == 1.0
  jax.tree.map(np.testing.assert_array_equal, new.params, state.params)
  jax.tree.map(np.testing.assert_array_equal, new.opt_state, state.opt_state)


@pytest.mark.slow
def test_gradient_accumulation_matches_the_full_batch(compiled):
  config, state, step = compiled
  batch = _batch(config, batch_size=4)
  _, full = step(state, batch, jax.random.key(1))
  config2 = _config(grad_accum_steps=2)
  _, accumulated = jax.jit(functools.partial(steps.train_step, config=config2))(
      state, batch, jax.random.key(1))
  np.testing.assert_allclose(accumulated['loss'], full['loss'], rtol=1e-5)
  np.testing.assert_allclose(accumulated['grad_norm'], full['grad_norm'], rtol=1e-4)


def test_label_smoothing_targets():
  targets = steps.soft_targets(jnp.array([2, 0]), 4, 0.1)
  np.testing.assert_allclose(targets, [[.025, .025, .925, .025], [.925, .025, .025, .025]],
                             rtol=1e-6)
  np.testing.assert_array_equal(steps.soft_targets(jnp.array([1]), 3, 0.0), [[0, 1, 0]])


@pytest.mark.slow
def test_eval_step_averages_softmax_scores_over_views(compiled):
  config, state, _ = compiled
  config = _config()
  clips = _batch(config, batch_size=6)['video'].reshape((2, 3) + steps.clip_shape(config))
  batch = {'video': clips, 'label': np.array([1, 2], np.int32), 'mask': np.array([True, False])}
  out = jax.jit(functools.partial(steps.eval_step, config=config))(state, batch)
  logits = state.apply_fn({'params': state.params}, clips.reshape((6,) + clips.shape[2:]))[0]
  logits = logits.reshape(2, 3, -1)
  np.testing.assert_allclose(out['probs'], jax.nn.softmax(logits).mean(1), atol=1e-6)
  np.testing.assert_allclose(out['logits'], logits.mean(1), atol=1e-5)
  np.testing.assert_array_equal(out['mask'], [True, False])
  config.eval.views_one_by_one = True
  one_by_one = jax.jit(functools.partial(steps.eval_step, config=config))(state, batch)
  np.testing.assert_allclose(one_by_one['probs'], out['probs'], atol=1e-6)


@pytest.mark.slow
def test_abstract_state_has_the_real_state_structure_and_shardings():
  config = _config()
  model = models.build_model(config.model, NUM_CLASSES)
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ('data', 'fsdp'))
  abstract = steps.create_train_state(config, model, jax.random.key(0), mesh=mesh, abstract=True)
  real = steps.create_train_state(config, model, jax.random.key(0), mesh=mesh)
  paths = lambda tree: [(p, x.shape) for p, x in jax.tree_util.tree_leaves_with_path(tree)]
  assert paths(abstract) == paths(real)
  assert all(isinstance(x.sharding, jax.sharding.NamedSharding) for x in jax.tree.leaves(real))


def test_schedule_steps_from_epochs_or_explicit():
  config = _config()
  config.num_train_steps, config.num_epochs, config.batch_size = -1, 2.0, 4
  assert run_config.schedule_steps(config, 10) == (5, 2.5)
  config.num_train_steps = 7
  assert run_config.schedule_steps(config, 10) == (7, 2.5)



@pytest.mark.slow
def test_bfloat16_remat_and_mixing_train_together(compiled):
  """The compute-dtype, rematerialisation and mixup/cutmix options in one step."""
  _, state, _ = compiled
  config = _config()
  config.model.dtype, config.model.remat = 'bfloat16', True
  config.input.mixup_alpha, config.input.cutmix_alpha = 0.8, 1.0
  model = models.build_model(config.model, NUM_CLASSES)
  state = state.replace(apply_fn=model.apply)  # same parameters, bf16 + remat compute
  new, metrics = jax.jit(functools.partial(steps.train_step, config=config))(
      state, _batch(config), jax.random.key(1))
  assert float(metrics['nonfinite']) == 0.0 and np.isfinite(float(metrics['loss']))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(new.params))


def _imagenet_swin_file(path, config):
  """A microsoft/Swin-Transformer release file (``{'model': state_dict}``, 2D patch embed,
  1000-class ``head``, index buffers) for the 2D Swin of ``config.model``'s widths."""
  torch = pytest.importorskip('torch')
  from tps_jax import convert  # pylint: disable=g-import-not-at-top
  cfg2d = test_config.get_config('swin2d').model
  cfg2d.patch_size = (1, 4, 4)
  model = models.build_model(cfg2d, 1000)
  variables = model.init(jax.random.key(7), jnp.zeros((1, 1, 28, 28, 3)), train=False)
  sd = {k[len('backbone.'):]: v for k, v in convert.flax_to_official(variables).items()
        if k.startswith('backbone.')}
  sd['patch_embed.proj.weight'] = sd['patch_embed.proj.weight'][:, :, 0]  # Conv2d
  sd['head.weight'] = np.zeros((1000, cfg2d.embed_dim), np.float32)
  sd['head.bias'] = np.zeros((1000,), np.float32)
  for b in range(cfg2d.depths[0]):
    sd[f'layers.0.blocks.{b}.attn.relative_position_index'] = np.zeros((49, 49), np.int64)
  torch.save({'model': {k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()}}, path)
  return sd


def _three_class_tfrecord_set(directory):
  """A TFRecord data set of 3 classes (another class count than the synthetic 10)."""
  from tests.input_pipeline import fakes  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(0)
  clips = lambda n: [fakes.clip(i % 3, 8, clip_id=f'c{i}', frames=[
      fakes.jpeg(int(v), 32) for v in rng.randint(0, 255, 8)]) for i in range(n)]
  splits = fakes.write_split(directory, 'train', clips(8), ['a', 'b', 'c'], num_shards=1)
  fakes.write_split(directory, 'validation', clips(4), ['a', 'b', 'c'], num_shards=1,
                    manifest_splits=splits)


@pytest.mark.slow
def test_pretraining_chain_imagenet_to_k400_shaped_run_to_another_class_count(
    tiny_data_dir, tmp_path):
  """ImageNet Swin .pth -> inflated -> a 10-class run -> a 3-class run from its workdir."""
  from tps_jax import checkpoints, weights  # pylint: disable=g-import-not-at-top
  pth = str(tmp_path / 'swin_tiny_patch4_window7_224.pth')
  k400 = test_config.get_config()
  imagenet = _imagenet_swin_file(pth, k400)
  k400.init_required = True  # as the paper configs
  k400.dataset.data_dir = tiny_data_dir
  k400.num_train_steps, k400.eval_every_steps = 4, 2
  with pytest.raises(train.SetupError, match='config.init_from is not set'):
    train.train_and_evaluate(k400, str(tmp_path / 'refused'))
  k400.init_from = pth
  summary = train.train_and_evaluate(k400, str(tmp_path / 'k400'))
  init = summary['init']
  assert init['kind'] == 'imagenet' and init['source'] == pth
  assert init['reinitialised'] == ['head/bias', 'head/kernel'] and init['source_classes'] == 1000
  assert set(init['ignored']) == {k for k in imagenet if k.startswith('head.') or 'index' in k}
  assert [p['step'] for p in summary['validation']] == [2, 4]  # cheap protocol while training
  assert summary['eval']['validation']['count'] == 20           # test protocol at the end
  best = summary['best_validation']['step']
  assert os.listdir(tmp_path / 'k400' / checkpoints.BEST) == [str(best)]

  other = test_config.get_config()
  other.init_required = True
  _three_class_tfrecord_set(tmp_path)
  other.dataset.format, other.dataset.data_dir = 'tfrecord', str(tmp_path)
  other.dataset.flip_pairs = other.dataset.no_flip_classes = ()
  other.input.flip_mode = 'off'
  other.init_from = str(tmp_path / 'k400')
  summary = train.train_and_evaluate(other, str(tmp_path / 'other'))
  init = summary['init']
  assert summary['num_classes'] == 3 and init['kind'] == 'workdir' and init['step'] == 4
  assert init['reinitialised'] == ['head/bias', 'head/kernel'] and init['source_classes'] == 10
  assert init['ignored'] == ['head/bias', 'head/kernel']  # Flax names: no PyTorch round trip
  # The weights that run started from: the K400 run's backbone, a new head.
  k400_params, _ = checkpoints.restore_params(str(tmp_path / 'k400'))
  start, _ = weights.load_params(other.init_from, other.model, 3, rng=jax.random.key(0))
  assert start['head']['kernel'].shape == (8, 3)
  assert not np.allclose(start['head']['kernel'][:, 0], k400_params['head']['kernel'][:, 0])
  backbone = lambda p: {k: v for k, v in p.items() if k != 'head'}
  jax.tree.map(np.testing.assert_array_equal, backbone(start), backbone(k400_params))
  with open(tmp_path / 'other' / 'init.json') as f:
    assert json.load(f)['kind'] == 'workdir'


def test_paper_config_without_init_from_stops_before_compiling(tmp_path, monkeypatch):
  from configs import ssv2_tps  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(jax, 'jit', lambda *a, **k: pytest.fail('compiled'))
  with pytest.raises(train.SetupError) as e:
    train.run_mode(ssv2_tps.get_config(), str(tmp_path), 'train')
  message = str(e.value)
  assert '\n' not in message and '--config.init_from=scratch' in message
  assert 'Reproducing the paper' in message and '--config.init_from=PATH' in message
  config = ssv2_tps.get_config()
  config.init_from = 'scratch'  # on purpose: passes the check, stops at the missing data
  with pytest.raises(train.SetupError) as e:
    train.run_mode(config, str(tmp_path), 'train')
  assert 'init_from' not in str(e.value) and 'something_something_v2' in str(e.value)


@pytest.mark.slow
def test_a_run_with_the_augmentation_on_the_device_trains_and_resumes_the_same(data_dir,
                                                                                tmp_path):
  """augment_on='device' end to end: uint8 crops from the pipeline, the recipe's flip,
  RandAugment and random erasing in the train step; a resumed run draws the same clips."""
  def config(steps):
    c = test_config.get_config()
    c.dataset.data_dir = data_dir
    c.num_train_steps, c.checkpoint.every_steps = steps, 2
    c.optim.schedule = 'constant'
    c.input.augment_on, c.input.randaugment_num_ops = 'device', 2
    c.input.random_erasing_prob = 0.25
    return c
  from tps_jax import reporting  # pylint: disable=g-import-not-at-top
  full = train.run_mode(config(4), str(tmp_path / 'full'), 'train')
  assert full['finished'] and full['step'] == 4
  train.run_mode(config(2), str(tmp_path / 'cut'), 'train')
  train.run_mode(config(4), str(tmp_path / 'cut'), 'train')  # resumes at 2
  losses = [dict(reporting.read_history(str(tmp_path / d))['train_loss']) for d in ('full', 'cut')]
  assert np.all(np.isfinite(list(losses[0].values())))
  assert losses[1][4] == pytest.approx(losses[0][4], rel=1e-5), losses
