"""Preparing as main.py does (``prepare``, then ``get_dataset_info``, which never builds):
skip field, stale data, configs, and what info says about data that is not prepared."""
import os

import numpy as np
import pytest

import input_pipeline
from input_pipeline import builders
from input_pipeline import features
from input_pipeline.builders import base
from tests.input_pipeline.builders import fakes as builder_fakes
from tests.input_pipeline.fakes import make_config


def _custom(tmp_path, missing=False):
  """A custom_videos download (2 train, 1 validation clip) and its locked config."""
  manual = os.fspath(tmp_path / 'm')
  for seed, name in enumerate(('a.mp4', 'b.mp4', 'c.mp4')):
    builder_fakes.write_video(f'{manual}/{name}', seed=40 * seed)
  builder_fakes.write_text(f'{manual}/train.txt', 'a.mp4 jump\nb.mp4 run\n'
                           + ('gone.mp4 run\n' if missing else ''))
  builder_fakes.write_text(f'{manual}/val.txt', 'c.mp4 run\n')
  config = make_config('custom', os.fspath(tmp_path / 'd'))
  config.unlock()
  config.dataset.manual_dir = manual
  config.dataset.builder_config = 'res128'
  return config


def _main_prepares(config):
  """What main.py does before training: prepare, then ask the info."""
  input_pipeline.prepare(config.dataset)
  return input_pipeline.get_dataset_info(config)


def _files(root):
  return sorted(os.path.join(r, f) for r, _, fs in os.walk(root) for f in fs)


@pytest.mark.parametrize('name', ['synthetic_tiny', 'custom'])
def test_info_on_an_unprepared_data_dir_builds_nothing_and_says_how_to_prepare(tmp_path,
                                                                                name):
  config = _custom(tmp_path) if name == 'custom' else make_config(name, str(tmp_path / 'd'))
  before = _files(tmp_path)
  how = ('python -m tps_jax.apps.build --dataset=custom --manual_dir=DOWNLOAD' if
         name == 'custom' else r'main.py prepares it on first use \(input_pipeline.prepare')
  with pytest.raises(features.NotPreparedError, match=(
      rf'^{name}: \w+/\w+ is not prepared under {tmp_path}/d: .*{how}')) as e:
    input_pipeline.get_dataset_info(config)  # custom: even with its download at hand
  assert '\n' not in str(e.value)
  assert _files(tmp_path) == before and not os.path.exists(tmp_path / 'd')


def test_main_renders_the_synthetic_set_into_an_empty_data_dir_on_first_use(tmp_path):
  config = make_config('synthetic_tiny', str(tmp_path / 'empty'))
  assert _main_prepares(config).num_examples == {'train': 40, 'validation': 20, 'test': 20}
  assert input_pipeline.prepare(config.dataset).reused  # the next run reads it


def test_missing_manual_dir_is_a_one_line_error_naming_the_data_set(tmp_path):
  config = make_config('ssv2', str(tmp_path))
  config.dataset.manual_dir = str(tmp_path / 'no_such_download')
  with pytest.raises(FileNotFoundError, match=r"^ssv2: not prepared under .*manual_dir=") as e:
    input_pipeline.prepare(config.dataset)
  assert '\n' not in str(e.value)


def test_missing_clip_stops_preparation_naming_the_config_field(tmp_path):
  config = _custom(tmp_path, missing=True)
  with pytest.raises(base.BuildError, match=r'^custom_videos train: train.txt:3: no such '
                     r'file: .*gone.mp4 .*config.dataset.skip_unreadable=True'):
    input_pipeline.prepare(config.dataset)


def test_skip_unreadable_field_reaches_the_builder(tmp_path):
  config = _custom(tmp_path, missing=True)
  config.dataset.skip_unreadable = True
  info = _main_prepares(config)
  assert info.num_examples == {'train': 2, 'validation': 1}
  assert info.class_names == ['jump', 'run']
  skipped = tmp_path / 'd/custom_videos/res128/1.0.0/skipped_train.txt'
  assert skipped.read_text().startswith('train.txt:3\t')


def test_other_builder_config_prepared_is_refused_in_one_line(tmp_path):
  config = _custom(tmp_path)
  input_pipeline.prepare(config.dataset)
  config.dataset.builder_config = 'res256'
  config.dataset.manual_dir = None  # refused before the download is even looked at
  for asked in (lambda: input_pipeline.prepare(config.dataset),
                lambda: input_pipeline.get_dataset_info(config)):
    with pytest.raises(FileNotFoundError, match=(
        r'^custom: builder config res256 is not prepared under .* but res128 is: set '
        r'config.dataset.builder_config=res128 .*--builder_config=res256\)$')) as e:
      asked()
    assert '\n' not in str(e.value)


def test_ctrl_c_while_main_prepares_is_one_line_and_resumable(tmp_path, monkeypatch):
  config = _custom(tmp_path)
  put = base.EncodeCache.put

  def interrupted(cache, key, result):  # Ctrl-C reaches the writer after the 1st clip
    if cache._entries:  # pylint: disable=protected-access
      raise KeyboardInterrupt
    put(cache, key, result)

  monkeypatch.setattr(base.EncodeCache, 'put', interrupted)
  with pytest.raises(builders.Interrupted, match=r'^custom: preparing custom_videos was '
                     r'interrupted \(Ctrl-C\); .* run the same command again to resume$'):
    input_pipeline.prepare(config.dataset)
  monkeypatch.setattr(base.EncodeCache, 'put', put)
  assert _main_prepares(config).num_examples == {'train': 2, 'validation': 1}


def test_changed_annotation_is_refused_when_main_prepares(tmp_path):
  config = _custom(tmp_path)
  assert _main_prepares(config).num_examples['train'] == 2
  builder_fakes.write_text(f'{config.dataset.manual_dir}/train.txt', 'a.mp4 run\nb.mp4 run\n')
  with pytest.raises(base.StaleDataError, match=r'train.txt changed; rebuild it with '
                     r'--overwrite \(python -m tps_jax.apps.build --dataset=custom_videos'):
    input_pipeline.prepare(config.dataset)
  assert input_pipeline.get_dataset_info(config).num_examples['train'] == 2  # only reads
  config.dataset.manual_dir = None  # without the download there is nothing to compare
  assert _main_prepares(config).num_examples['train'] == 2


@pytest.mark.slow
def test_eval_batches_carry_the_video_ids(tiny_config):
  info = input_pipeline.get_dataset_info(tiny_config)
  batches = list(input_pipeline.create_eval_iterator(tiny_config, 'validation', info=info))
  ids = np.concatenate([b['id'] for b in batches])
  mask = np.concatenate([b['mask'] for b in batches])
  assert len(set(ids[mask])) == info.num_examples['validation'] == 20
  assert all(i for i in ids[mask]) and not any(ids[~mask])
