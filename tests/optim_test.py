"""The optimizer of the released runs: mmcv's parameter rules and lr hook, AdamW arithmetic."""
import math

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import base
from configs.model_table import model_config
from tps_jax import convert
from tps_jax import models
from tps_jax import optim

# paramwise_cfg.custom_keys of every official TPS config (swin_*_tps_*_1k.py), and mmcv's
# optimizer defaults (lr 1e-3, weight_decay 0.02).
OFFICIAL_CUSTOM_KEYS = {'absolute_pos_embed': dict(decay_mult=0.),
                        'relative_position_bias_table': dict(decay_mult=0.),
                        'norm': dict(decay_mult=0.),
                        'backbone': dict(lr_mult=0.1)}


def mmcv_param_group(name, custom_keys, base_lr=1e-3, base_wd=0.02):
  """mmcv DefaultOptimizerConstructor.add_params for one parameter: (lr, weight_decay).

  Keys sorted alphabetically, then by length, longest first; the first key that is a
  substring of the name decides; otherwise the base lr and decay (no bias/norm
  multipliers are configured in the TPS configs, so they are 1).
  """
  for key in sorted(sorted(custom_keys), key=len, reverse=True):
    if key in name:
      return (base_lr * custom_keys[key].get('lr_mult', 1.),
              base_wd * custom_keys[key].get('decay_mult', 1.))
  return base_lr, base_wd


def _tps_tiny_params():
  model = models.build_model(model_config('tps', 'tiny'), 174)
  clip = jax.ShapeDtypeStruct((1, 16, 224, 224, 3), jnp.float32)
  return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), clip)['params']


def _config(**optim_fields):
  config = base.get_config('synthetic_tiny')
  config.optim.update(optim_fields)
  return config


def test_released_rules_equal_mmcv_on_every_tps_tiny_parameter():
  params = _tps_tiny_params()
  config = _config()
  table = optim.param_table(params, config)
  assert len(table) == 173
  for path, (name, lr_mult, decay_mult) in table.items():
    lr, wd = mmcv_param_group(name, OFFICIAL_CUSTOM_KEYS)
    assert (config.optim.learning_rate * lr_mult, config.optim.weight_decay * decay_mult) == \
        pytest.approx((lr, wd)), (path, name)
  by_name = {name: (lm, dm) for name, lm, dm in table.values()}
  # What that means, on names a reader recognises:
  assert by_name['backbone.layers.0.blocks.0.attn.relative_position_bias_table'] == (1.0, 0.0)
  assert by_name['backbone.layers.0.blocks.0.norm1.weight'] == (0.1, 1.0)
  assert by_name['backbone.norm.bias'] == (0.1, 1.0)
  assert by_name['backbone.layers.2.blocks.5.attn.qkv.bias'] == (0.1, 1.0)
  assert by_name['cls_head.fc_cls.bias'] == (1.0, 1.0)
  assert by_name['cls_head.fc_cls.weight'] == (1.0, 1.0)


def test_released_table_lists_the_official_keys_in_mmcv_order():
  keys = sorted(sorted(OFFICIAL_CUSTOM_KEYS), key=len, reverse=True)
  expected = tuple((k, OFFICIAL_CUSTOM_KEYS[k].get('lr_mult', 1.),
                    OFFICIAL_CUSTOM_KEYS[k].get('decay_mult', 1.)) for k in keys)
  assert tuple(map(tuple, _config().optim.rule_tables.released)) == expected


def test_stated_rules_are_the_stated_recipe():
  """No decay on norms, biases and bias tables (by Flax leaf name); backbone lr x0.1."""
  params = _tps_tiny_params()
  for path, (name, lr_mult, decay_mult) in optim.param_table(params, _config(rules='stated')).items():
    no_decay = path[-1] in ('bias', 'scale', 'relative_position_bias_table')
    assert decay_mult == (0.0 if no_decay else 1.0), name
    assert lr_mult == (1.0 if path[0] == 'head' else 0.1), name


def test_bad_rule_is_named():
  config = _config(rules='mine')
  with pytest.raises(ValueError, match=r"config.optim.rules='mine' is not one of"):
    optim.check_rules(config)
  config = _config()
  config.optim.rule_tables.released = (('norm(', 1.0, 0.0),)
  with pytest.raises(ValueError, match=r'config.optim.rule_tables.released\[0\].*bad pattern'):
    optim.check_rules(config)


class MmcvCosineHook:
  """mmcv's CosineAnnealingLrUpdaterHook (LrUpdaterHook) for one param group, by epoch.

  Re-implemented from mmcv/runner/hooks/lr_updater.py: before_train_epoch sets the
  regular lr of the epoch; before_train_iter sets the linear warm-up lr while
  iter < warmup_iters, the regular lr at iter == warmup_iters, and does nothing after.
  """

  def __init__(self, base_lr, min_lr, max_epochs, warmup_epochs, warmup_ratio, by_epoch=True):
    self.base_lr, self.min_lr, self.max_epochs = base_lr, min_lr, max_epochs
    self.warmup_epochs, self.warmup_ratio, self.by_epoch = warmup_epochs, warmup_ratio, by_epoch
    self.lr = None

  def regular(self, epoch):
    cos_out = math.cos(math.pi * epoch / self.max_epochs) + 1
    return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * cos_out

  def run(self, epoch_len):
    warmup_iters = self.warmup_epochs * epoch_len
    lrs, it = [], 0
    for epoch in range(self.max_epochs):
      regular = self.regular(epoch)
      self.lr = regular
      for _ in range(epoch_len):
        if it < warmup_iters:
          k = (1 - it / warmup_iters) * (1 - self.warmup_ratio)
          self.lr = regular * (1 - k)
        elif it == warmup_iters:
          self.lr = regular
        lrs.append(self.lr)
        it += 1
    return lrs


@pytest.mark.parametrize('epoch_len', [7, 8])  # warm-up of 17.5 (fractional) or 20 iterations
def test_cosine_by_epoch_equals_mmcv_lr_hook(epoch_len):
  epochs = 6
  config = _config(learning_rate=1e-3, warmup_epochs=2.5, warmup_ratio=0.1, min_lr=1e-5)
  config.num_epochs, config.num_train_steps = epochs, -1
  lr = optim.learning_rate_schedule(config, epochs * epoch_len, epoch_len)
  expected = MmcvCosineHook(1e-3, 1e-5, epochs, 2.5, 0.1).run(epoch_len)
  got = [float(lr(i)) for i in range(epochs * epoch_len)]
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  assert got[0] == pytest.approx(1e-4)                    # warmup_ratio x lr
  assert got[3 * epoch_len] == pytest.approx(expected[3 * epoch_len])
  assert len(set(got[3 * epoch_len:4 * epoch_len])) == 1  # constant within an epoch


def test_per_step_cosine_option_is_the_earlier_schedule():
  config = _config(learning_rate=1e-3, warmup_epochs=2.5, warmup_ratio=0.0, min_lr=0.0,
                   schedule='cosine')
  lr = optim.learning_rate_schedule(config, num_train_steps=100, steps_per_epoch=4)
  assert float(lr(0)) == 0.0
  np.testing.assert_allclose(float(lr(5)), 5e-4, rtol=1e-6)   # halfway through 10 warm-up steps
  np.testing.assert_allclose(float(lr(10)), 1e-3, rtol=1e-6)
  np.testing.assert_allclose(float(lr(55)), 5e-4, rtol=1e-5)  # cosine midpoint
  assert float(lr(100)) < 1e-9


def _small_params():
  return {
      'head': {'kernel': jnp.ones((4, 3)), 'bias': jnp.ones((3,))},
      'layers_0': {'blocks_0': {
          'norm1': {'scale': jnp.ones((4,)), 'bias': jnp.ones((4,))},
          'attn': {'qkv': {'kernel': jnp.ones((4, 12)), 'bias': jnp.ones((12,))},
                   'relative_position_bias_table': jnp.ones((5, 2))}}},
  }


def _one_step(config):
  params = _small_params()
  tx = optim.create_optimizer(config, optim.learning_rate_schedule(config, 10, 1), params)
  grads = jax.tree.map(lambda p: -2.0 * jnp.ones_like(p), params)
  updates, _ = tx.update(grads, tx.init(params), params)
  return jax.tree.map(float, jax.tree.map(lambda x: x.reshape(-1)[0],
                                          flax.core.unfreeze(_apply(params, updates))))


def _apply(params, updates):
  return jax.tree.map(lambda p, u: p + u, params, updates)


@pytest.mark.slow
def test_one_step_is_pytorch_adamw_on_the_released_groups():
  """First AdamW step: p - lr * lr_mult * (g / |g| + wd * decay_mult * p)."""
  config = _config(learning_rate=0.1, weight_decay=0.5, warmup_epochs=0, schedule='constant',
                   eps=0.0)
  new = _one_step(config)
  block = new['layers_0']['blocks_0']
  assert new['head']['kernel'] == pytest.approx(1 - 0.1 * (-1 + 0.5))        # lr x1, decayed
  assert new['head']['bias'] == pytest.approx(1.05)                         # head bias decays too
  assert block['attn']['qkv']['kernel'] == pytest.approx(1 - 0.01 * (-0.5))  # lr x0.1, decayed
  assert block['norm1']['scale'] == pytest.approx(1.005)                    # norms decay (x0.1)
  assert block['attn']['relative_position_bias_table'] == pytest.approx(1.1)  # lr x1, no decay


def test_one_step_on_the_stated_groups():
  config = _config(learning_rate=0.1, weight_decay=0.5, warmup_epochs=0, schedule='constant',
                   eps=0.0, rules='stated')
  new = _one_step(config)
  block = new['layers_0']['blocks_0']
  assert new['head']['kernel'] == pytest.approx(1.05) and new['head']['bias'] == pytest.approx(1.1)
  assert block['attn']['qkv']['kernel'] == pytest.approx(1.005)
  assert block['norm1']['scale'] == pytest.approx(1.01)
  assert block['attn']['relative_position_bias_table'] == pytest.approx(1.01)


def test_global_norm_clipping_before_adam():
  config = _config(grad_clip_norm=1.0, schedule='constant', warmup_epochs=0, b1=0.0)
  params = {'head': {'kernel': jnp.zeros((2,))}}
  tx = optim.create_optimizer(config, optim.learning_rate_schedule(config, 10, 1), params)
  _, state = tx.update({'head': {'kernel': jnp.array([3.0, 4.0])}}, tx.init(params), params)
  adam = state[1]  # (clip, adam, decay, lr, lr_mult)
  np.testing.assert_allclose(adam.mu['head']['kernel'], [0.6, 0.8], rtol=1e-6)


def test_torch_name_maps_flax_paths_to_official_names():
  assert convert.torch_name('layers_1/blocks_0/norm1/scale') == \
      'backbone.layers.1.blocks.0.norm1.weight'
  assert convert.torch_name(('head', 'kernel')) == 'cls_head.fc_cls.weight'
