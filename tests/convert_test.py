"""Weight conversion: parity with the official model, key errors, .pth, ImageNet inflation."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.model_table import model_config
from tests.conftest import FIXTURE, ROOT
from tps_jax import convert, models, weights


def fixture_model_config():
  """The architecture of ../shared/fixtures/official_tps_tiny.npz (see its README)."""
  c = model_config('tps', 'tiny')
  c.embed_dim, c.depths, c.num_heads = 16, (2, 2, 2), (1, 2, 4)
  return c


@pytest.fixture(scope='module')
def fixture():
  with np.load(FIXTURE) as f:
    return {k: f[k] for k in f.files}


def _forward(model, variables, clip_ncthw):
  x = jnp.asarray(clip_ncthw.transpose(0, 2, 3, 4, 1))  # NCTHW -> NTHWC
  logits, out = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
  return np.asarray(logits), np.asarray(out['features']).transpose(0, 4, 1, 2, 3)


def test_official_checkpoint_reproduces_official_features_and_logits(fixture):
  model, variables = convert.load_official(FIXTURE, fixture_model_config())
  logits, features = _forward(model, variables, fixture['input'])
  assert np.abs(features - fixture['features']).max() < 1e-4
  assert np.abs(logits - fixture['logits']).max() < 1e-4


def test_pth_checkpoint_loads_like_the_npz(fixture, tmp_path):
  torch = pytest.importorskip('torch')
  sd = {k[len('state_dict/'):]: torch.from_numpy(v) for k, v in fixture.items()
        if k.startswith('state_dict/')}
  path = tmp_path / 'tps.pth'
  torch.save({'meta': {}, 'state_dict': sd}, path)
  _, from_pth = convert.load_official(str(path), fixture_model_config())
  _, from_npz = convert.load_official(FIXTURE, fixture_model_config())
  for a, b in zip(jax.tree_util.tree_leaves(from_pth), jax.tree_util.tree_leaves(from_npz)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)  # XLA may fuse the sampling


def _state_dict(fixture):
  return {k[len('state_dict/'):]: v for k, v in fixture.items() if k.startswith('state_dict/')}


def test_missing_key_is_named(fixture):
  sd = _state_dict(fixture)
  del sd['backbone.layers.1.blocks.0.attn.qkv.bias']
  with pytest.raises(KeyError, match=r'missing backbone\.layers\.1\.blocks\.0\.attn\.qkv\.bias'):
    convert.official_to_flax(sd, fixture_model_config())


def test_unexpected_key_is_named(fixture):
  sd = _state_dict(fixture)
  sd['backbone.layers.2.blocks.2.norm1.weight'] = np.ones(64, np.float32)
  with pytest.raises(KeyError, match=r'unexpected key backbone\.layers\.2\.blocks\.2\.norm1\.weight'):
    convert.official_to_flax(sd, fixture_model_config())


def test_misshaped_key_is_named(fixture):
  cfg = fixture_model_config()
  cfg.num_heads = (1, 2, 8)  # the checkpoint's last-stage tables have 4 heads
  with pytest.raises(ValueError, match=r'backbone\.layers\.2\.blocks\.0\.attn\.relative_position_bias_table has shape \(5239, 4\)'):
    convert.official_to_flax(_state_dict(fixture), cfg)


def test_missing_checkpoint_file_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match='nope.pth'):
    convert.load_official(str(tmp_path / 'nope.pth'), fixture_model_config())


def test_export_round_trips(fixture):
  _, variables = convert.load_official(FIXTURE, fixture_model_config())
  sd = convert.flax_to_official(variables)
  ref = {k: v for k, v in _state_dict(fixture).items() if 'relative_position_index' not in k}
  assert sorted(sd) == sorted(ref)
  for k in ref:
    np.testing.assert_array_equal(sd[k], ref[k])


def _imagenet_checkpoint(cfg2d, window):
  """A microsoft/Swin-Transformer style 2D checkpoint, built from a random swin2d model."""
  model = models.build_model(cfg2d, 1000)
  x = jnp.zeros((1, 1, 32, 32, 3))
  variables = jax.jit(lambda x: model.init(jax.random.key(3), x, train=False))(x)
  # Perturb norms/biases so a dropped or mis-mapped one would show.
  leaves, tree = jax.tree_util.tree_flatten(variables)
  keys = jax.random.split(jax.random.key(4), len(leaves))
  variables = jax.tree_util.tree_unflatten(
      tree, [l + 0.1 * jax.random.normal(k, l.shape) for l, k in zip(leaves, keys)])
  sd = {k[len('backbone.'):]: v for k, v in convert.flax_to_official(variables).items()
        if k.startswith('backbone.')}
  sd['patch_embed.proj.weight'] = sd['patch_embed.proj.weight'][:, :, 0]  # Conv2d
  sd['head.weight'] = np.zeros((1000, 32), np.float32)
  sd['head.bias'] = np.zeros((1000,), np.float32)
  sd['layers.0.blocks.0.attn.relative_position_index'] = np.zeros((window ** 2,) * 2, np.int64)
  return model, variables, {'model': sd}


@pytest.mark.slow
def test_imagenet_inflation_reproduces_2d_swin_on_a_static_clip():
  cfg2d = model_config('swin2d', 'tiny')
  cfg2d.embed_dim, cfg2d.depths, cfg2d.num_heads = 16, (2, 2), (1, 2)
  cfg2d.patch_size = (1, 4, 4)
  model2d, vars2d, ckpt = _imagenet_checkpoint(cfg2d, 7)
  cfg = model_config('tps', 'tiny')  # patch (2,4,4), official bias, patch + channel shift
  cfg.embed_dim, cfg.depths, cfg.num_heads = 16, (2, 2), (1, 2)
  model, variables = convert.inflate_imagenet(ckpt['model'], cfg, num_classes=7)
  table = variables['params']['layers_0']['blocks_1']['attn']['relative_position_bias_table']
  assert table.shape == (5239, 1)
  image = jax.random.normal(jax.random.key(0), (1, 1, 56, 56, 3))
  clip = jnp.repeat(image, 8, axis=1)  # a static clip: shifts move identical content
  feats = jax.jit(lambda v, x: model.apply(v, x, train=False)[1]['features'])(variables, clip)
  feats2d = jax.jit(lambda v, x: model2d.apply(v, x, train=False)[1]['features'])(vars2d, image)
  for t in range(feats.shape[1]):
    np.testing.assert_allclose(feats[:, t], feats2d[:, 0], atol=2e-4)


@pytest.mark.slow
def test_imagenet_inflation_resizes_tables_for_another_window():
  cfg2d = model_config('swin2d', 'tiny')
  cfg2d.embed_dim, cfg2d.depths, cfg2d.num_heads = 16, (2, 2), (1, 2)
  cfg2d.patch_size, cfg2d.window_size = (1, 4, 4), (1, 4, 4)
  _, _, ckpt = _imagenet_checkpoint(cfg2d, 4)
  cfg = model_config('tps', 'tiny')
  cfg.embed_dim, cfg.depths, cfg.num_heads = 16, (2, 2), (1, 2)
  _, variables = convert.inflate_imagenet(ckpt['model'], cfg, num_classes=7)
  table = np.asarray(variables['params']['layers_1']['blocks_0']['attn']['relative_position_bias_table'])
  assert table.shape == (31 * 169, 2)
  np.testing.assert_array_equal(table[:169], table[169 * 30:])  # repeated over temporal rows


@pytest.mark.slow
def test_cli_writes_an_orbax_checkpoint_that_load_params_reads(tmp_path, fixture):
  cfg_file = tmp_path / 'fixture_config.py'
  cfg_file.write_text(
      'import ml_collections\n'
      'from tests.convert_test import fixture_model_config\n'
      'def get_config():\n'
      '  return ml_collections.ConfigDict({"model": fixture_model_config()})\n')
  out = tmp_path / 'ckpt'
  res = subprocess.run(
      [sys.executable, '-m', 'tps_jax.apps.convert', f'--config={cfg_file}', f'--checkpoint={FIXTURE}',
       f'--output={out}'], cwd=ROOT, capture_output=True, text=True,
      env={**os.environ, 'PYTHONPATH': ROOT}, timeout=300)
  assert res.returncode == 0, res.stderr[-3000:]
  assert 'parameters' in res.stdout
  params, _ = weights.load_params(str(out), fixture_model_config(), 10)
  model = models.build_model(fixture_model_config(), 10)
  logits, _ = _forward(model, {'params': params}, fixture['input'])
  assert np.abs(logits - fixture['logits']).max() < 1e-4
  # A different class count keeps the backbone and re-initialises the head.
  p3, _ = weights.load_params(str(out), fixture_model_config(), 3)
  assert p3['head']['kernel'].shape == (64, 3)


@pytest.mark.slow
def test_cli_says_the_head_of_an_inflated_imagenet_checkpoint_is_random(tmp_path):
  torch = pytest.importorskip('torch')
  cfg2d = model_config('swin2d', 'tiny')
  cfg2d.embed_dim, cfg2d.depths, cfg2d.num_heads = 16, (2, 2), (1, 2)
  cfg2d.patch_size = (1, 4, 4)
  _, _, ckpt = _imagenet_checkpoint(cfg2d, 7)
  path = tmp_path / 'swin.pth'
  torch.save({'model': {k: torch.from_numpy(np.array(v)) for k, v in ckpt['model'].items()}},
             path)
  cfg_file = tmp_path / 'tps_config.py'
  cfg_file.write_text(
      'import ml_collections\n'
      "from configs.model_table import model_config\n"
      'def get_config():\n'
      '  cfg = model_config("tps", "tiny")\n'
      '  cfg.embed_dim, cfg.depths, cfg.num_heads = 16, (2, 2), (1, 2)\n'
      '  return ml_collections.ConfigDict({"model": cfg})\n')
  res = subprocess.run(
      [sys.executable, '-m', 'tps_jax.apps.convert', f'--config={cfg_file}', '--imagenet',
       f'--checkpoint={path}', f'--output={tmp_path / "out"}'], cwd=ROOT, capture_output=True,
      text=True, env={**os.environ, 'PYTHONPATH': ROOT}, timeout=300)
  assert res.returncode == 0, res.stderr[-3000:]
  assert 'note: the head (1000 classes) is random, not ImageNet\'s' in res.stdout, res.stdout


class _RunsCode:
  """Pickles as a call of ``os.remove(marker)``: loading it unsafely would delete the file."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.remove, (self.marker,))


def test_pth_with_pickled_code_is_refused_in_one_line_and_never_run(tmp_path):
  torch = pytest.importorskip('torch')
  marker = tmp_path / 'still_here'
  marker.write_text('')
  path = str(tmp_path / 'evil.pth')
  torch.save({'state_dict': {'w': torch.zeros(2)}, 'hook': _RunsCode(str(marker))}, path)
  with pytest.raises(ValueError) as e:
    convert.load_state_dict(path)
  message = str(e.value)
  assert message.startswith(f'{path}: refused to unpickle: '), message
  assert 'GLOBAL posix.remove' in message, message  # names what it would have called
  assert '\n' not in message and 'weights_only' not in message
  assert marker.exists()  # the pickled call did not run


def test_a_new_head_is_initialised_jitted_with_the_values_of_the_whole_models_init(
    fixture, monkeypatch):
  cfg, rng, traced = fixture_model_config(), jax.random.key(5), []
  jit = jax.jit
  monkeypatch.setattr(jax, 'jit', lambda f, *a, **k: traced.append(f) or jit(f, *a, **k))
  model, variables = convert.official_to_flax(_state_dict(fixture), cfg, 3, strict_head=False,
                                              rng=rng)
  assert traced  # compiled to the head's initialisers, not the whole forward run eagerly
  monkeypatch.setattr(jax, 'jit', jit)
  clip = jnp.zeros((1, 4, 112, 112, 3), jnp.float32)
  whole = jax.jit(lambda r: model.init(r, clip, train=False))(rng)['params']['head']
  for a, b in zip(jax.tree_util.tree_leaves(variables['params']['head']),
                  jax.tree_util.tree_leaves(whole)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)  # XLA may fuse the sampling
