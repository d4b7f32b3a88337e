"""The optimizer of the official recipe: masks, lr groups, schedule, AdamW arithmetic."""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from configs import base
from tps_jax import optim


def _params():
  return {
      'head': {'kernel': jnp.ones((4, 3)), 'bias': jnp.ones((3,))},
      'layers_0': {'blocks_0': {
          'norm1': {'scale': jnp.ones((4,)), 'bias': jnp.ones((4,))},
          'attn': {'qkv': {'kernel': jnp.ones((4, 12)), 'bias': jnp.ones((12,))},
                   'relative_position_bias_table': jnp.ones((5, 2))}}},
  }


def _config(**optim_fields):
  config = base.get_config('synthetic_tiny')
  config.optim.update(optim_fields)
  return config


def test_no_weight_decay_on_norms_biases_and_bias_tables():
  mask = optim.decay_mask(_params(), _config())
  block = mask['layers_0']['blocks_0']
  assert mask['head']['kernel'] and block['attn']['qkv']['kernel']
  assert not any([mask['head']['bias'], block['norm1']['scale'], block['norm1']['bias'],
                  block['attn']['qkv']['bias'], block['attn']['relative_position_bias_table']])


def test_head_and_backbone_groups():
  groups = optim.lr_groups(_params(), _config())
  assert groups['head'] == {'kernel': 'head', 'bias': 'head'}
  assert set(jax.tree.leaves(groups['layers_0'])) == {'backbone'}


def test_warmup_then_cosine_to_min_lr():
  config = _config(learning_rate=1e-3, warmup_epochs=2.5, min_lr=0.0)
  lr = optim.learning_rate_schedule(config, num_train_steps=100, steps_per_epoch=4)
  assert float(lr(0)) == 0.0
  np.testing.assert_allclose(float(lr(5)), 5e-4, rtol=1e-6)   # halfway through 10 warm-up steps
  np.testing.assert_allclose(float(lr(10)), 1e-3, rtol=1e-6)
  np.testing.assert_allclose(float(lr(55)), 5e-4, rtol=1e-5)  # cosine midpoint
  assert float(lr(100)) < 1e-9


def test_one_step_is_pytorch_adamw_with_lr_mult():
  """First AdamW step: p - lr * mult * (g / (|g| + eps) + wd * p), decay only where masked."""
  config = _config(learning_rate=0.1, backbone_lr_mult=0.1, weight_decay=0.5,
                   warmup_epochs=0, schedule='constant', eps=0.0)
  params = _params()
  tx = optim.create_optimizer(config, optim.learning_rate_schedule(config, 10, 1), params)
  grads = jax.tree.map(lambda p: -2.0 * jnp.ones_like(p), params)
  updates, _ = tx.update(grads, tx.init(params), params)
  new = optax.apply_updates(params, updates)
  # head kernel: decayed, lr 0.1: 1 - 0.1 * (-1 + 0.5) = 1.05
  np.testing.assert_allclose(new['head']['kernel'], 1.05, rtol=1e-6)
  # head bias: no decay: 1 + 0.1 = 1.1
  np.testing.assert_allclose(new['head']['bias'], 1.1, rtol=1e-6)
  block = new['layers_0']['blocks_0']
  # backbone kernel: lr 0.01, decayed: 1 - 0.01 * (-0.5) = 1.005
  np.testing.assert_allclose(block['attn']['qkv']['kernel'], 1.005, rtol=1e-6)
  # backbone norm scale: lr 0.01, no decay: 1.01
  np.testing.assert_allclose(block['norm1']['scale'], 1.01, rtol=1e-6)


def test_global_norm_clipping_before_adam():
  config = _config(grad_clip_norm=1.0, schedule='constant', warmup_epochs=0, b1=0.0)
  params = {'head': {'kernel': jnp.zeros((2,))}}
  tx = optim.create_optimizer(config, optim.learning_rate_schedule(config, 10, 1), params)
  _, state = tx.update({'head': {'kernel': jnp.array([3.0, 4.0])}}, tx.init(params), params)
  adam = state[1]  # (clip, adam, decay, lr, groups)
  np.testing.assert_allclose(adam.mu['head']['kernel'], [0.6, 0.8], rtol=1e-6)
