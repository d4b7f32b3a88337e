"""Every config file builds, is locked-safe, its full-size model maps its clips to class
scores (``jax.eval_shape``: no compilation, no compute), its data set is the registry's
and its input the data table's recipe."""
import glob
import importlib
import math
import os

import jax
import jax.numpy as jnp
import pytest

from configs import data_table
from input_pipeline import registry
from tps_jax import models
from tps_jax import run_config

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
  run_config.check_config(config)
  models.validate(config.model, config.input.num_frames, config.input.eval_image_size)


@pytest.mark.parametrize('name', EXPERIMENTS)
def test_config_model_at_full_size_scores_its_train_and_eval_clips(name):
  config = _build(name)
  m, c, num_classes = config.model, config.input, 7  # the head's width changes nothing else
  model = models.build_model(m, num_classes)
  width = m.embed_dim * 2 ** (len(m.depths) - 1)
  for size in sorted({c.image_size, c.eval_image_size}):
    clip = jax.ShapeDtypeStruct((2, c.num_frames, size, size, 3), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), clip)
    logits, out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, clip)
    assert logits.shape == (2, num_classes)
    tokens = (math.ceil(c.num_frames / m.patch_size[0]),) + (
        math.ceil(size / m.patch_size[1] / 2 ** (len(m.depths) - 1)),) * 2
    assert out['features'].shape == (2, *tokens, width)
  assert variables['params']['head']['kernel'].shape == (width, num_classes)


@pytest.mark.parametrize('name', EXPERIMENTS)
def test_config_data_set_is_its_registry_spec(name):
  config = _build(name)
  d, spec = config.dataset, registry.get(config.dataset.name)
  assert (d.format, d.tfds_name, d.builder_module) == (spec.format, spec.tfds_name,
                                                        spec.builder_module)
  assert d.builder_config in (spec.builder_configs or (None,))
  assert dict(d.splits) == spec.splits and set(spec.splits) == {'train', 'eval', 'test'}
  assert [tuple(p) for p in d.flip_pairs] == list(spec.flip_pairs)
  assert tuple(d.no_flip_classes) == spec.no_flip_classes
  for split in config.eval.splits:  # roles or literal split names of the data set
    assert split in spec.splits or split in spec.splits.values(), split
  for key, value in data_table.RECIPES[d.name].items():  # its data set's recipe
    assert config.input[key] == value, key


@pytest.mark.parametrize('size', ['tiny', 'small', 'base', 'large'])
@pytest.mark.parametrize('name', SIZED)
def test_paper_configs_take_a_model_size(name, size):
  config = _build(name, size)
  assert config.model.embed_dim == {'tiny': 96, 'small': 96, 'base': 128, 'large': 192}[size]
  run_config.check_config(config)


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
