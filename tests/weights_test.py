"""load_params: every kind of weights path -> Flax params and their provenance; errors name the path."""
import os
import re

import flax
import jax
import numpy as np
import pytest

from configs import test as test_config
from configs.model_table import model_config
from tests.conftest import FIXTURE, fixture_config
from tests.convert_test import _imagenet_checkpoint, _state_dict
from tps_jax import checkpoints
from tps_jax import convert
from tps_jax import models
from tps_jax import steps
from tps_jax import weights

HEAD = ['head/bias', 'head/kernel']


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """(workdir, config, params): a main.py workdir with one checkpoint (step 1), 3 classes."""
  workdir = os.fspath(tmp_path_factory.mktemp('run'))
  config = test_config.get_config()
  state = steps.create_train_state(config, models.build_model(config.model, 3),
                                   jax.random.key(0))
  ckpt = checkpoints.Checkpoints(workdir, config, 3)
  ckpt.save(1, state, force=True)
  ckpt.close()
  return workdir, config, state.params


@pytest.fixture(scope='module')
def official():
  with np.load(FIXTURE) as f:
    return _state_dict({k: f[k] for k in f.files})


def _no_pytorch_names(*args, **kwargs):
  raise AssertionError('a workdir was renamed to PyTorch names')


def test_workdir_loads_as_trained_in_flax_names(trained, monkeypatch):
  workdir, config, params = trained
  for name in ('flax_to_official', 'official_to_flax', 'official_to_flax_report',
               'load_state_dict'):
    monkeypatch.setattr(convert, name, _no_pytorch_names)
  for path in (workdir, os.path.join(workdir, 'checkpoints')):
    loaded, provenance = weights.load_params(path, config.model, None)
    jax.tree.map(np.testing.assert_array_equal, loaded, params)
    assert (provenance.kind, provenance.step, provenance.source) == ('workdir', 1, path)
    assert (provenance.num_classes, provenance.source_classes) == (3, 3)
    assert provenance.reinitialised == provenance.ignored == []
    assert sorted(provenance.loaded) == sorted(flax.traverse_util.flatten_dict(params, sep='/'))


def test_workdir_for_another_class_count_keeps_the_backbone_with_a_new_head(trained):
  workdir, config, params = trained
  loaded, provenance = weights.load_params(workdir, config.model, 5, rng=jax.random.key(1))
  assert loaded['head']['kernel'].shape == (params['head']['kernel'].shape[0], 5)
  backbone = lambda p: {k: v for k, v in p.items() if k != 'head'}
  jax.tree.map(np.testing.assert_array_equal, backbone(loaded), backbone(params))
  assert provenance.reinitialised == provenance.ignored == HEAD  # Flax names, both
  assert (provenance.source_classes, provenance.num_classes) == (3, 5)
  line = provenance.describe()
  assert line.startswith(f'weights from workdir {workdir} (step 1): loaded ')
  assert line.endswith('re-initialised head/bias, head/kernel (3 classes there, 5 here); '
                       'ignored 2: head/bias, head/kernel')


def test_workdir_of_another_model_is_refused_naming_the_field_or_the_array(trained):
  workdir, _, _ = trained
  config = test_config.get_config()
  config.model.embed_dim = 16
  with pytest.raises(ValueError, match=r'different model: config\.model\.embed_dim=8 there, '
                     r'16 here; pass the config it was trained with'):
    weights.load_params(workdir, config.model, None)
  with pytest.raises(ValueError) as e:  # fine-tuning: no config check, but the shapes differ
    weights.load_params(workdir, config.model, 3)
  assert str(e.value).startswith(f'{workdir}: ') and 'the model needs' in str(e.value)


def test_empty_workdir_is_a_one_line_error(tmp_path):
  os.makedirs(tmp_path / 'checkpoints')
  with pytest.raises(FileNotFoundError, match=r'^no checkpoint in .*checkpoints$'):
    weights.load_params(os.fspath(tmp_path), test_config.get_config().model, None)


def test_official_file_and_its_converted_orbax_dir_give_the_same_params(tmp_path):
  config = fixture_config()
  params, provenance = weights.load_params(FIXTURE, config.model, None)
  assert (provenance.kind, provenance.num_classes, provenance.step) == ('official', 10, None)
  assert provenance.reinitialised == [] and all('relative_position_index' in k
                                                for k in provenance.ignored)
  convert.save_variables({'params': params}, os.fspath(tmp_path / 'orbax'))
  params2, provenance2 = weights.load_params(os.fspath(tmp_path / 'orbax'), config.model, None)
  assert (provenance2.kind, provenance2.num_classes) == ('orbax', 10)
  jax.tree.map(np.testing.assert_array_equal, params2, params)


def test_pth_loads_like_the_npz(official, tmp_path):
  torch = pytest.importorskip('torch')
  path = os.fspath(tmp_path / 'tps.pth')
  torch.save({'meta': {}, 'state_dict': {k: torch.from_numpy(v) for k, v in official.items()}},
             path)
  model_cfg = fixture_config().model
  from_pth, provenance = weights.load_params(path, model_cfg, 10)
  from_npz, _ = weights.load_params(FIXTURE, model_cfg, 10)
  assert provenance.kind == 'official' and provenance.source == path
  jax.tree.map(np.testing.assert_array_equal, from_pth, from_npz)


@pytest.mark.slow
def test_imagenet_checkpoint_is_inflated_with_a_new_head(tmp_path):
  cfg2d = model_config('swin2d', 'tiny')
  cfg2d.embed_dim, cfg2d.depths, cfg2d.num_heads = 16, (2, 2), (1, 2)
  cfg2d.patch_size = (1, 4, 4)
  _, _, ckpt = _imagenet_checkpoint(cfg2d, 7)
  path = os.fspath(tmp_path / 'swin.npz')
  np.savez(path, **ckpt['model'])
  cfg = model_config('tps', 'tiny')
  cfg.embed_dim, cfg.depths, cfg.num_heads = 16, (2, 2), (1, 2)
  params, provenance = weights.load_params(path, cfg, 7, rng=jax.random.key(2))
  assert (provenance.kind, provenance.source_classes, provenance.num_classes) == (
      'imagenet', 1000, 7)
  assert provenance.reinitialised == HEAD
  assert provenance.ignored == ['head.bias', 'head.weight',
                                'layers.0.blocks.0.attn.relative_position_index']
  _, expected = convert.inflate_imagenet(ckpt['model'], cfg, 7, rng=jax.random.key(2))
  jax.tree.map(np.testing.assert_array_equal, params, expected['params'])
  with pytest.raises(ValueError, match=r'swin\.npz has no classifier'):  # nothing to predict
    weights.load_params(path, cfg, None)


def test_errors_name_the_path_and_the_cause_not_a_flag(official, tmp_path):
  model_cfg = fixture_config().model
  messages = []
  np.savez(tmp_path / 'backbone.npz', **{k: v for k, v in official.items() if 'cls_head' not in k})
  np.savez(tmp_path / 'wrong.npz', **dict(official, **{
      'backbone.patch_embed.proj.bias': np.zeros(5, np.float32)}))
  os.makedirs(tmp_path / 'notes')
  (tmp_path / 'notes' / 'a.txt').write_text('')
  cases = [('nope.pth', None, FileNotFoundError, 'no such checkpoint: {}$'),
           ('backbone.npz', None, ValueError,
            '^{} has no classifier \\(cls_head.fc_cls.weight\\)'),
           ('wrong.npz', 10, ValueError, r'^{}: checkpoint backbone\.patch_embed\.proj\.bias '
                                         r'has shape \(5,\), the model needs \(16,\)'),
           ('notes', 10, FileNotFoundError, '^{} holds no checkpoint')]
  for name, num_classes, error, pattern in cases:
    path = os.fspath(tmp_path / name)
    with pytest.raises(error, match=pattern.format(re.escape(path))) as e:
      weights.load_params(path, model_cfg, num_classes)
    messages.append(str(e.value))
  assert not [m for m in messages if '--checkpoint' in m or 'init_from' in m or '\n' in m]
