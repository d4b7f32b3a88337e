"""The reversal_pairs TFDS builder: tfds.load offline, balanced, equal to the renderer."""
import socket

import numpy as np
import tensorflow_datasets as tfds

import input_pipeline.synthetic  # noqa: F401  (registers the builder)
from input_pipeline.synthetic import render
from input_pipeline.synthetic import reversal_pairs


def test_tfds_load_generates_the_set_without_network(tmp_path, monkeypatch):
  def no_network(*args, **kwargs):
    raise OSError('network access attempted')
  monkeypatch.setattr(socket.socket, 'connect', no_network)
  monkeypatch.setattr(socket, 'create_connection', no_network)
  ds, info = tfds.load('reversal_pairs/tiny', split='validation', data_dir=str(tmp_path),
                       with_info=True, download_and_prepare_kwargs={
                           'download_config': tfds.download.DownloadConfig(
                               try_download_gcs=False)})
  assert info.features['label'].num_classes == 10
  assert len(list(ds)) == 20


def test_every_split_is_class_balanced(tiny_data_dir):
  builder = tfds.builder('reversal_pairs/tiny', data_dir=tiny_data_dir)
  for split, count in (('train', 40), ('validation', 20), ('test', 20)):
    labels = [int(ex['label']) for ex in builder.as_dataset(split=split)]
    assert np.bincount(labels, minlength=10).tolist() == [count // 10] * 10


def test_stored_clips_are_the_rendered_clips(tiny_data_dir):
  builder = tfds.builder('reversal_pairs/tiny', data_dir=tiny_data_dir)
  cfg = builder.builder_config
  for ex in builder.as_dataset(split='test').take(3):
    index = int(ex['id'].numpy().decode().rsplit('_', 1)[1])
    assert int(ex['label']) == render.clip_label(index)
    expected = render.render_clip((cfg.seed, reversal_pairs.SPLIT_IDS['test'], index),
                                  int(ex['label']), cfg.spec)
    assert np.abs(ex['video'].numpy().astype(float) - expected).mean() < 8  # JPEG


def test_split_ids_are_unique(tiny_data_dir):
  builder = tfds.builder('reversal_pairs/tiny', data_dir=tiny_data_dir)
  ids = [ex['id'].numpy() for s in ('train', 'validation', 'test')
         for ex in builder.as_dataset(split=s)]
  assert len(set(ids)) == 80
