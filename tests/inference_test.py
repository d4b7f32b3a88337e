"""Inference API: scores without optimizer state (checkpoints: tests/weights_test.py)."""
import functools

import jax
import numpy as np
import pytest

from configs import test as test_config
from tps_jax import inference
from tps_jax import models
from tps_jax import steps


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
