"""Every config file builds, is locked-safe, and its model fits its clips (no compilation)."""
import glob
import importlib
import os

import pytest

from tps_jax import models
from tps_jax import train

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs')
TABLES = ('model_table', 'data_table', '__init__')
EXPERIMENTS = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(CONFIG_DIR, '*.py'))
                     if os.path.basename(p)[:-3] not in TABLES)
SIZED = ('ssv2_tps', 'ssv1_tps', 'k400_tps', 'diving48_tps', 'custom_tps')


def _build(name, *args):
  config = importlib.import_module(f'configs.{name}').get_config(*args)
  config.lock()
  return config


@pytest.mark.parametrize('name', EXPERIMENTS)
def test_config_builds_and_its_model_fits_its_clips(name):
  config = _build(name)
  train.check_config(config)
  models.validate(config.model, config.input.num_frames, config.input.eval_image_size)


@pytest.mark.parametrize('size', ['tiny', 'small', 'base', 'large'])
@pytest.mark.parametrize('name', SIZED)
def test_paper_configs_take_a_model_size(name, size):
  config = _build(name, size)
  assert config.model.embed_dim == {'tiny': 96, 'small': 96, 'base': 128, 'large': 192}[size]
  train.check_config(config)


def test_every_config_has_a_docstring_with_its_command():
  for name in EXPERIMENTS:
    if name == 'base':
      continue
    doc = importlib.import_module(f'configs.{name}').__doc__
    assert doc and 'main.py --config=configs/' in doc, name


@pytest.mark.parametrize('name,smoothing', [('ssv2_tps', 0.1), ('ssv1_tps', 0.1),
                                            ('diving48_tps', 0.02), ('k400_tps', 0.0)])
def test_paper_recipe(name, smoothing):
  config = _build(name)
  o = config.optim
  assert (o.learning_rate, o.b1, o.b2, o.weight_decay) == (1e-3, 0.9, 0.999, 0.02)
  assert (o.rules, o.warmup_epochs, o.warmup_ratio, o.schedule) == (
      'released', 2.5, 0.1, 'cosine_by_epoch')
  assert config.init_required and config.eval_every_epochs == 5
  assert config.num_epochs == 30 and config.loss.label_smoothing == smoothing
  assert config.input.num_frames == 32
  assert tuple(config.model.patch_size) == (2, 4, 4)
  assert tuple(config.model.window_size) == (1, 7, 7)
  views = (config.input.test_num_clips, config.input.test_num_crops)
  assert views == ((4, 3) if name == 'k400_tps' else (1, 3))


def test_misspelled_field_is_an_error():
  config = _build('synthetic_tps')
  with pytest.raises(AttributeError):
    config.optim.lr = 1.0  # locked: no silent new keys


def test_synthetic_baselines_differ_only_in_the_architecture():
  tps = _build('synthetic_tps').to_dict()
  for name in ('synthetic_swin2d', 'synthetic_tsm', 'synthetic_video_swin'):
    other = _build(name).to_dict()
    diff = {k for k in tps if tps[k] != other[k]}
    assert diff == {'model'}, (name, diff)
    assert other['model']['patch_size'] == tps['model']['patch_size']
