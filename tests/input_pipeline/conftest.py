"""Shared fixtures: the tiny synthetic set (generated once per session) and configs."""
import pytest

from tests.input_pipeline.fakes import make_config


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
