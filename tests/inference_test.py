"""Inference API: any checkpoint kind -> (model, params, meta); scores without optimizer state."""
import functools
import os

import jax
import numpy as np
import pytest

from configs import test as test_config
from tests.conftest import FIXTURE, fixture_config
from tps_jax import checkpoints
from tps_jax import convert
from tps_jax import inference
from tps_jax import models
from tps_jax import steps



def test_workdir_restores_its_params_and_refuses_another_model_config(tmp_path):
  config = test_config.get_config()
  state = steps.create_train_state(config, models.build_model(config.model, 3),
                                   jax.random.key(0))
  ckpt = checkpoints.Checkpoints(tmp_path, config, 3)
  ckpt.save(1, state, force=True)
  ckpt.close()
  model, params, meta = inference.load_checkpoint(config, os.fspath(tmp_path))
  assert model.num_classes == 3
  assert (meta['kind'], meta['step'], meta['num_classes']) == ('workdir', 1, 3)
  assert meta['model']['embed_dim'] == config.model.embed_dim
  jax.tree.map(np.testing.assert_array_equal, params, state.params)
  config.model.embed_dim = 16
  with pytest.raises(ValueError, match=r'different model: config\.model\.embed_dim=8 there, '
                     r'16 here; pass the config it was trained with'):
    inference.load_checkpoint(config, os.fspath(tmp_path))


def test_empty_workdir_is_a_one_line_error(tmp_path):
  os.makedirs(tmp_path / 'checkpoints')
  with pytest.raises(FileNotFoundError, match=r'^no checkpoint in .*checkpoints$'):
    inference.load_checkpoint(test_config.get_config(), os.fspath(tmp_path))


def test_official_file_and_converted_orbax_dir_give_the_same_params(tmp_path):
  config = fixture_config()
  model, params, meta = inference.load_checkpoint(config, FIXTURE)
  assert (meta['kind'], meta['num_classes'], meta['step']) == ('official', 10, None)
  convert.save_variables({'params': params}, os.fspath(tmp_path / 'orbax'))
  model2, params2, meta2 = inference.load_checkpoint(config, os.fspath(tmp_path / 'orbax'))
  assert meta2['kind'] == 'orbax' and model2.num_classes == model.num_classes == 10
  jax.tree.map(np.testing.assert_array_equal, params2, params)


def test_checkpoint_without_classifier_is_refused(tmp_path):
  with np.load(FIXTURE) as f:
    sd = {k: f[k] for k in f.files if k.startswith('state_dict/') and 'cls_head' not in k}
  path = tmp_path / 'backbone.npz'
  np.savez(path, **sd)
  with pytest.raises(ValueError, match=r'backbone\.npz has no classifier'):
    inference.load_checkpoint(fixture_config(), os.fspath(path))


@pytest.mark.slow
def test_scores_are_eval_steps_without_an_optimizer_and_view_by_view_alike():
  config = test_config.get_config()
  model = models.build_model(config.model, 5)
  state = steps.create_train_state(config, model, jax.random.key(1))
  views = jax.random.uniform(jax.random.key(2), (2, 3, 8, 28, 28, 3))
  out = jax.jit(functools.partial(inference.scores, model.apply, config=config))(
      state.params, views)
  logits = np.stack([model.apply({'params': state.params}, v, train=False)[0] for v in views])
  np.testing.assert_allclose(out['probs'], jax.nn.softmax(logits).mean(1), atol=1e-6)
  np.testing.assert_allclose(out['logits'], logits.mean(1), atol=1e-5)
  step = steps.eval_step(state, {'video': views, 'label': np.array([0, 4])}, config=config)
  np.testing.assert_array_equal(step['probs'], out['probs'])
  assert step['label'].tolist() == [0, 4]
  config.eval.views_one_by_one = True
  one_by_one = inference.scores(model.apply, state.params, views, config=config)
  np.testing.assert_allclose(one_by_one['probs'], out['probs'], atol=1e-6)
