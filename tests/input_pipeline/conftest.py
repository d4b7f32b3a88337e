"""Shared fixtures: the tiny synthetic set (generated once per session) and configs."""
import ml_collections
import pytest

from configs import data_table


def make_config(name='synthetic_tiny', data_dir=None, *, batch_size=8, eval_batch_size=6,
                seed=0):
  """A locked config with the dataset/input sections of `name` and the top-level fields."""
  config = ml_collections.ConfigDict()
  config.dataset = data_table.dataset_config(name)
  config.input = data_table.input_config(name)
  config.dataset.data_dir = data_dir
  config.batch_size = batch_size
  config.eval_batch_size = eval_batch_size
  config.seed = seed
  config.lock()
  return config


@pytest.fixture(scope='session')
def tiny_data_dir(tmp_path_factory):
  """A TFDS data dir holding the prepared `reversal_pairs/tiny` (40/20/20 clips)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  import input_pipeline.synthetic  # pylint: disable=g-import-not-at-top,unused-import
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  tfds.builder('reversal_pairs/tiny', data_dir=data_dir).download_and_prepare(
      download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return data_dir


@pytest.fixture
def tiny_config(tiny_data_dir):
  return make_config('synthetic_tiny', tiny_data_dir)
