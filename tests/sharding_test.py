"""The mesh, the FSDP rules, host<->global batches, and one step on a (4, 2) fake-CPU mesh."""
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from configs import base
from tps_jax import sharding

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(data=-1, fsdp=1, min_size=16):
  config = base.get_config('synthetic_tiny')
  config.mesh.data, config.mesh.fsdp = data, fsdp
  config.sharding.fsdp_min_size = min_size
  return config


class _FakeMesh:
  """Only ``shape`` is read by the rules."""
  def __init__(self, fsdp):
    self.shape = {'data': 1, 'fsdp': fsdp}


def test_fsdp_splits_the_largest_divisible_dim():
  spec = sharding._leaf_spec('layers_0/blocks_0/mlp/fc1/kernel', (6, 8), _FakeMesh(4), _config())
  assert spec == jax.sharding.PartitionSpec(None, 'fsdp')  # 6 is not divisible by 4


def test_small_and_indivisible_and_listed_leaves_are_replicated():
  config = _config(min_size=100)
  P = jax.sharding.PartitionSpec
  assert sharding._leaf_spec('a/kernel', (8, 8), _FakeMesh(4), config) == P()       # 64 < 100
  assert sharding._leaf_spec('a/kernel', (7, 15), _FakeMesh(4), _config()) == P()   # indivisible
  table = 'layers_0/blocks_1/attn/relative_position_bias_table'
  assert sharding._leaf_spec(table, (5239, 8), _FakeMesh(4), _config()) == P()      # rule
  assert sharding._leaf_spec('step', (), _FakeMesh(4), _config()) == P()


def test_unknown_strategy_is_an_error():
  config = _config()
  config.sharding.rules = (('.*', 'tensor'),)
  with pytest.raises(ValueError, match='unknown strategy'):
    sharding._leaf_spec('a/kernel', (8, 8), _FakeMesh(2), config)


def test_mesh_shape_errors_name_the_config():
  with pytest.raises(ValueError, match='config.mesh'):
    sharding.make_mesh(_config(data=3, fsdp=1))
  with pytest.raises(ValueError, match='at most one axis'):
    sharding.make_mesh(_config(data=-1, fsdp=-1))


def test_one_device_mesh_and_batch_round_trip():
  mesh = sharding.make_mesh(_config())
  assert mesh.axis_names == ('data', 'fsdp') and mesh.devices.size == jax.device_count()
  batch = {'video': np.arange(24, dtype=np.float32).reshape(2, 3, 4), 'label': np.array([1, 2])}
  out = sharding.global_to_host(sharding.host_to_global(batch, mesh))
  jax.tree.map(np.testing.assert_array_equal, out, batch)


def test_batch_must_divide_over_devices():
  assert sharding.local_batch_size(8) == 8 // jax.process_count()
  if jax.device_count() > 1:
    with pytest.raises(ValueError, match='not divisible'):
      sharding.local_batch_size(jax.device_count() + 1)


_MESH_SCRIPT = textwrap.dedent('''
    import functools, sys, types
    sys.path.insert(0, {root!r})
    import jax, numpy as np
    from configs import test as test_config
    from tps_jax import models, sharding, steps

    def run(data, fsdp, devices):
      config = test_config.get_config()
      config.model.drop_path_rate = config.model.head_dropout_rate = 0.0
      config.batch_size = 8
      config.mesh.data, config.mesh.fsdp = data, fsdp
      config.sharding.fsdp_min_size = 64   # split even this tiny model's kernels
      info, config.input.augment_on = None, 'host'
      if {augment}:  # uint8 clips, every op of the recipe drawn on the device, per clip
        config.input.augment_on, config.input.randaugment_num_ops = 'device', 2
        config.input.random_erasing_prob = config.input.flip_prob = 0.5
        config.input.flip_mode = 'swap_labels'
        info = types.SimpleNamespace(flip_label_map=np.arange(10)[::-1], no_flip_classes=[])
      mesh = sharding.make_mesh(config, devices)
      model = models.build_model(config.model, 10)
      state = steps.create_train_state(config, model, jax.random.key(0), mesh=mesh)
      shardings = jax.tree.map(lambda x: x.sharding, state)
      p_train, _ = steps.jit_steps(config, mesh, shardings, info)
      rng = np.random.RandomState(0)
      losses = []
      with jax.set_mesh(mesh):
        for _ in range(2):
          shape = (8,) + steps.clip_shape(config)
          video = (rng.randint(0, 256, shape).astype(np.uint8) if {augment} else
                   rng.normal(size=shape).astype(np.float32))
          batch = {{'video': video, 'label': rng.randint(0, 10, 8).astype(np.int32)}}
          state, metrics = p_train(state, sharding.host_to_global(batch, mesh), jax.random.key(1))
          losses.append(float(metrics['loss']))
      split = sum(any(a is not None for a in x.sharding.spec) for x in jax.tree.leaves(state.params))
      return losses, jax.tree.map(np.asarray, state.params), split

    assert jax.device_count() == 8, jax.devices()
    one_losses, one_params, _ = run(1, 1, jax.devices()[:1])
    mesh_losses, mesh_params, split = run(4, 2, jax.devices())
    assert split > 0, 'no parameter was split over fsdp'
    np.testing.assert_allclose(mesh_losses, one_losses, rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                 mesh_params, one_params)
    print('OK', one_losses, mesh_losses, 'fsdp-split params:', split)
''')


@pytest.mark.slow
@pytest.mark.parametrize('augment', [False, True], ids=['host_augmented', 'device_augmented'])
def test_step_on_a_4x2_fake_mesh_equals_one_device(augment):
  """Same loss and parameters (float tolerance) on a (data 4, fsdp 2) mesh as on 1 device;
  with device augmentation too (one key per clip of the global batch, not per shard)."""
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=8',
             JAX_PLATFORMS='cpu')
  script = _MESH_SCRIPT.format(root=ROOT, augment=augment)
  result = subprocess.run([sys.executable, '-c', script], env=env,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'OK' in result.stdout
