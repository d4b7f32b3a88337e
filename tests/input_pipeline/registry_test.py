"""The data-set registry: one spec per data set, read by configs, builders and pipeline."""
import importlib
import os
import subprocess
import sys

import pytest

from configs import data_table
import input_pipeline
from input_pipeline import builders
from input_pipeline import registry
from tests.input_pipeline import fakes
from tests.input_pipeline.builders import fakes as builder_fakes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize('name', [n for n, s in registry.SPECS.items() if s.format == 'tfds'])
def test_every_spec_names_a_builder_with_its_configs(name):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  spec = registry.SPECS[name]
  importlib.import_module(spec.builder_module)
  cls = tfds.builder_cls(spec.tfds_name)
  assert set(spec.builder_configs) <= {c.name for c in cls.BUILDER_CONFIGS}
  assert bool(getattr(cls, 'MANUAL_DOWNLOAD_INSTRUCTIONS', None)) == spec.manual


def test_config_tables_and_builders_read_the_registry():
  d = data_table.dataset_config('ssv1')
  assert (d.tfds_name, d.builder_module, d.builder_config) == (
      'something_something_v1', 'input_pipeline.builders.ssv1', 'res256')
  assert builders.BUILDERS['kinetics400'] == 'input_pipeline.builders.kinetics400'
  assert builders.builder_class('k400') is builders.builder_class('kinetics400')
  assert registry.get('diving48').splits['eval'] == 'test'


def test_video_builders_store_frames_as_the_registry_says():
  cls = builders.builder_class('ssv2')
  assert {c.name: c.min_resize for c in cls.BUILDER_CONFIGS} == {
      name: s['min_resize'] for name, s in registry.VIDEO_STORAGE.items()}


def test_unknown_name_lists_the_valid_ones():
  with pytest.raises(ValueError, match='unknown data set .ssv3.; valid names: synthetic, '):
    registry.get('ssv3')


def test_configs_and_registry_import_neither_tensorflow_nor_jax():
  code = ('import sys; import configs.ssv2_tps, configs.k400_tps, input_pipeline.registry; '
          'configs.ssv2_tps.get_config(); '
          'print(sorted(m for m in ("tensorflow", "jax") if m in sys.modules))')
  out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                       text=True, check=True).stdout
  assert out.strip() == '[]'


@pytest.mark.slow
def test_input_pipeline_works_without_jax():
  # sys.modules[name] = None makes `import jax` fail, as if JAX were not installed.
  code = ('import sys; sys.modules["jax"] = None; '
          'import input_pipeline, input_pipeline.pipeline, input_pipeline.build; '
          'from input_pipeline.builders import base; '
          'print(input_pipeline.get_dataset_info.__module__)')
  result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                          text=True, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip().endswith('input_pipeline.pipeline')


def test_prediction_stores_frames_as_the_configs_builder_config():
  from configs import base  # pylint: disable=g-import-not-at-top
  from tps_jax import predict  # pylint: disable=g-import-not-at-top
  config = base.get_config('ssv2')
  config.dataset.builder_config = 'res128'
  assert predict.storage(config) == dict(min_resize=128, fps=None, max_frames=None, quality=90)
  synthetic = base.get_config('synthetic')  # no builder storage: the input's short side
  assert predict.storage(synthetic)['min_resize'] == synthetic.input.min_resize == 32


SS_SUBSET = ['Holding something', 'Pulling something from right to left',
             'Turning the camera right while filming something', 'Dropping something',
             'Pulling something from left to right',
             'Turning the camera left while filming something', 'Tearing something']


def test_mirrored_pairs_are_found_from_the_left_right_label_texts():
  assert registry.mirrored_pairs(SS_SUBSET) == ((1, 4), (2, 5))
  assert registry.mirrored_pairs(['left', 'leftover', 'right']) == ((0, 2),)


def test_a_debug_subset_of_ssv2_gets_its_flip_pairs_from_the_label_texts(tmp_path):
  from input_pipeline import pipeline  # pylint: disable=g-import-not-at-top
  clips = [fakes.clip(k, clip_id=f'c{k}') for k in range(len(SS_SUBSET))]
  fakes.write_split(tmp_path, 'train', clips, SS_SUBSET, num_shards=1)
  config = fakes.make_config('tfrecord', str(tmp_path))
  config.dataset.name = 'fake'
  config.dataset.flip_pairs = registry.SS_FLIP_PAIRS  # what an SSv2 config carries
  config.dataset.no_flip_classes = registry.get('ssv2').no_flip_classes
  info = pipeline.get_dataset_info(config)
  assert list(info.flip_label_map) == [0, 4, 5, 3, 1, 2, 6]
  assert info.no_flip_classes == (1, 2, 4, 5)


def test_a_new_data_set_is_a_spec_a_builder_package_and_a_recipe_line(tmp_path, monkeypatch):
  # docs/extending_datasets.md: nothing else is edited for main.py to train on it.
  from configs import base  # pylint: disable=g-import-not-at-top
  spec = registry.DatasetSpec('toy', 'toy_videos', 'tests.input_pipeline.builders.toy',
                              ('res128', 'res256'), dict(train='train', eval='validation',
                                                         test='validation'), 'classes.txt')
  monkeypatch.setitem(registry.SPECS, 'toy', spec)
  monkeypatch.setitem(data_table.RECIPES, 'toy', dict(test_num_crops=1))
  manual = tmp_path / 'm'
  builder_fakes.write_text(f'{manual}/classes.txt', 'jump\nrun\n')
  for split in ('train', 'validation'):
    for seed, name in enumerate(('jump', 'run')):
      builder_fakes.write_video(f'{manual}/{split}/{name}/a.mp4', seed=40 * seed)
  config = base.get_config('toy')
  config.dataset.data_dir, config.dataset.manual_dir = str(tmp_path / 'd'), str(manual)
  input_pipeline.prepare(config.dataset)
  info = input_pipeline.get_dataset_info(config)
  assert info.class_names == ['jump', 'run'] and config.input.test_num_crops == 1
  assert info.num_examples == {'train': 2, 'validation': 2}
