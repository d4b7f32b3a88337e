"""Train / eval pipelines: contract shapes, exact resume, per-process splits, bad input."""
import logging

import numpy as np
import pytest

import input_pipeline
from input_pipeline import readers
from tests.input_pipeline import fakes
from tests.input_pipeline.fakes import make_config


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


@pytest.mark.slow
def test_train_batches_have_the_contract_shapes_and_dtypes(tiny_config):
  tiny_config.input.augment_on = 'host'  # the float32 contract (device: the uint8 crop)
  batch = next(input_pipeline.create_train_iterator(tiny_config))
  assert batch['video'].shape == (8, 8, 28, 28, 3) and batch['video'].dtype == np.float32
  assert batch['label'].shape == (8,) and batch['label'].dtype == np.int32
  assert -3 < batch['video'].mean() < 3  # normalised


@pytest.mark.slow
def test_device_augmentation_sends_the_uint8_crop_that_the_host_would_augment(tiny_config):
  """augment_on='device': the same crop, rounded to uint8, before flip and normalisation."""
  tiny_config.input.flip_mode = 'off'  # the host then only crops and normalises
  tiny_config.input.augment_on = 'host'  # synthetic_tiny's own is the device
  host = next(input_pipeline.create_train_iterator(tiny_config))
  tiny_config.input.augment_on = 'device'
  device = next(input_pipeline.create_train_iterator(tiny_config))
  assert device['video'].dtype == np.uint8 and device['video'].shape == host['video'].shape
  np.testing.assert_array_equal(device['label'], host['label'])
  c = tiny_config.input
  normalised = (device['video'].astype(np.float32) - np.float32(c.mean)) / np.float32(c.std)
  np.testing.assert_allclose(normalised, host['video'], atol=0.5 / min(c.std) + 1e-5)


@pytest.mark.slow
def test_train_iterator_resumes_exactly_from_any_step(tiny_config):
  # 40 clips, batch 8: 5 steps per epoch, so resuming at 7 starts inside epoch 1.
  full = _take(input_pipeline.create_train_iterator(tiny_config), 12)
  for start in (3, 7):
    resumed = _take(input_pipeline.create_train_iterator(tiny_config, start_step=start), 5)
    for a, b in zip(full[start:start + 5], resumed):
      np.testing.assert_array_equal(a['label'], b['label'])
      np.testing.assert_array_equal(a['video'], b['video'])


@pytest.mark.slow
def test_the_seed_changes_the_order_and_epochs_differ(tiny_data_dir):
  a = _take(input_pipeline.create_train_iterator(make_config(data_dir=tiny_data_dir)), 10)
  b = _take(input_pipeline.create_train_iterator(make_config(data_dir=tiny_data_dir, seed=1)),
            5)
  labels = lambda batches: np.concatenate([x['label'] for x in batches])
  assert not np.array_equal(labels(a[:5]), labels(b))
  assert not np.array_equal(labels(a[:5]), labels(a[5:]))


def _identity_dataset(tmp_path, n=24):
  """n clips, clip k has label k: the label identifies the record."""
  fakes.write_split(tmp_path, 'train', [fakes.clip(k) for k in range(n)],
                    [f'c{k}' for k in range(n)], num_shards=3,
                    manifest_splits=fakes.write_split(
                        tmp_path, 'validation', [fakes.clip(k) for k in range(n - 1)],
                        [f'c{k}' for k in range(n)], num_shards=2))
  config = make_config('tfrecord', str(tmp_path), batch_size=8, eval_batch_size=6)
  config.input.num_frames = 4
  config.input.image_size = config.input.eval_image_size = config.input.min_resize = 16
  config.input.flip_mode = 'off'
  config.input.shuffle_buffer = 5
  return config


@pytest.mark.slow
def test_train_processes_read_disjoint_records(tmp_path):
  config = _identity_dataset(tmp_path)
  # 24 records, 2 processes: 12 each, i.e. 3 local batches of 4 per epoch.
  seen = [np.concatenate([b['label'] for b in _take(input_pipeline.create_train_iterator(
      config, process_index=p, process_count=2), 3)]) for p in range(2)]
  assert all(len(set(s)) == 12 for s in seen)
  assert set(seen[0]).isdisjoint(seen[1])
  assert set(seen[0]) | set(seen[1]) == set(range(24))


@pytest.mark.slow
@pytest.mark.parametrize('process_count', [1, 2, 3])
def test_eval_sees_every_example_exactly_once_over_processes(tmp_path, process_count):
  config = _identity_dataset(tmp_path)
  labels, batches = [], []
  for p in range(process_count):
    out = list(input_pipeline.create_eval_iterator(config, 'validation', process_index=p,
                                                   process_count=process_count))
    batches.append(len(out))
    labels += [l for b in out for l, m in zip(b['label'], b['mask']) if m]
    assert all(b['video'].shape[0] == 6 // process_count for b in out)
  assert sorted(labels) == list(range(23))
  assert len(set(batches)) == 1  # every process yields as many batches


def test_eval_pads_the_last_batch_with_mask_false(tiny_config):
  batches = list(input_pipeline.create_eval_iterator(tiny_config, 'validation'))
  assert len(batches) == 4  # 20 clips, batches of 6
  masks = np.stack([b['mask'] for b in batches])
  assert masks.sum() == 20 and masks[-1].tolist() == [True, True, False, False, False, False]
  assert batches[0]['video'].shape == (6, 1, 8, 28, 28, 3)
  assert (batches[-1]['video'][2:] == 0).all()


def test_eval_views_are_test_clips_times_crops(tiny_data_dir):
  config = make_config(data_dir=tiny_data_dir)
  config.input.test_num_clips = 2
  config.input.test_num_crops = 3
  batch = next(input_pipeline.create_eval_iterator(config, 'test'))
  assert batch['video'].shape == (6, 6, 8, 28, 28, 3)


def test_dataset_info_of_the_synthetic_set(tiny_config):
  info = input_pipeline.get_dataset_info(tiny_config)
  assert info.num_classes == 10 and info.class_names[1] == 'moving_right_to_left'
  assert info.num_examples == {'train': 40, 'validation': 20, 'test': 20}
  assert info.flip_label_map.tolist() == [1, 0, 2, 3, 4, 5, 7, 6, 8, 9]
  assert info.no_flip_classes == (0, 1, 6, 7)


def test_global_batch_must_divide_by_the_process_count(tiny_config):
  with pytest.raises(ValueError, match='config.batch_size=8 is not divisible by'):
    input_pipeline.create_train_iterator(tiny_config, process_count=3)


# --- Bad input. ---------------------------------------------------------------------

_GOOD_JPEG = fakes.jpeg(50)
BAD_RECORDS = {
    'corrupt_jpeg': (fakes.clip(1, clip_id='bad', frames=[_GOOD_JPEG, _GOOD_JPEG[:200]]),
                     'frame 1 is not a complete JPEG (corrupt or truncated)'),
    'zero_frames': (fakes.clip(1, clip_id='bad', frames=[]), 'the record has no frames'),
    'label_out_of_range': (fakes.clip(7, clip_id='bad'), 'label 7 outside [0, 3)'),
}


def _dataset_with(tmp_path, bad_clip, skip_corrupt=False):
  clips = [fakes.clip(k % 3, clip_id=f'good{k}') for k in range(5)]
  clips.insert(2, bad_clip)
  fakes.write_split(tmp_path, 'validation', clips, ['a', 'b', 'c'], num_shards=1,
                    name='mine', manifest_splits=fakes.write_split(
                        tmp_path, 'train', clips, ['a', 'b', 'c'], num_shards=1))
  config = make_config('tfrecord', str(tmp_path), batch_size=2, eval_batch_size=2)
  config.dataset.name = 'mine'
  config.dataset.skip_corrupt = skip_corrupt
  config.input.num_frames = 4
  config.input.image_size = config.input.eval_image_size = config.input.min_resize = 16
  return config


@pytest.mark.slow
@pytest.mark.parametrize('kind', sorted(BAD_RECORDS))
def test_bad_record_is_a_one_line_error_naming_data_set_split_and_record(tmp_path, kind):
  bad_clip, reason = BAD_RECORDS[kind]
  config = _dataset_with(tmp_path, bad_clip)
  with pytest.raises(readers.BadRecordError) as e:
    list(input_pipeline.create_eval_iterator(config, 'validation'))
  message = str(e.value)
  assert '\n' not in message
  assert message.startswith("mine validation: record 'bad': " + reason)


@pytest.mark.slow
@pytest.mark.parametrize('kind', sorted(BAD_RECORDS))
def test_bad_record_is_skipped_counted_and_logged_with_skip_corrupt(tmp_path, kind, caplog):
  bad_clip, reason = BAD_RECORDS[kind]
  config = _dataset_with(tmp_path, bad_clip, skip_corrupt=True)
  with caplog.at_level(logging.WARNING):
    batches = list(input_pipeline.create_eval_iterator(config, 'validation'))
  labels = [l for b in batches for l, m in zip(b['label'], b['mask']) if m]
  assert labels == [0, 1, 2, 0, 1]
  assert f"skipped record 'bad': {reason} (1 skipped so far" in caplog.text


def test_bad_record_is_skipped_in_training_too(tmp_path):
  config = _dataset_with(tmp_path, BAD_RECORDS['zero_frames'][0], skip_corrupt=True)
  labels = np.concatenate([b['label'] for b in _take(
      input_pipeline.create_train_iterator(config), 5)])
  assert sorted(labels.tolist()) == sorted([0, 1, 2, 0, 1] * 2)


def test_undecodable_frame_is_a_one_line_error_naming_the_split(tmp_path):
  garbage = b'\xff\xd8' + bytes(range(256)) * 4 + b'\xff\xd9'
  config = _dataset_with(tmp_path, fakes.clip(1, clip_id='bad', frames=[garbage] * 3))
  with pytest.raises(readers.BadRecordError, match='^mine validation: ') as e:
    list(input_pipeline.create_eval_iterator(config, 'validation'))
  assert '\n' not in str(e.value)


def test_record_shorter_than_the_clip_loops(tmp_path):
  # Frames 0 and 1 are flat grey 10 and 20; dense sampling of 4 frames loops 0 1 0 1.
  two = fakes.clip(1, clip_id='short', frames=[fakes.jpeg(10), fakes.jpeg(20)])
  config = _dataset_with(tmp_path, two)
  config.input.sampling = 'dense'
  config.input.frame_interval = 1
  batches = list(input_pipeline.create_eval_iterator(config, 'validation'))
  video = batches[1]['video'][0, 0]  # record 2 (first of the second batch) is the short one
  grey = video[..., 0].mean(axis=(1, 2)) * config.input.std[0] + config.input.mean[0]
  np.testing.assert_allclose(grey, [10, 20, 10, 20], atol=2)


def test_missing_tfrecord_dir_is_a_one_line_error(tmp_path):
  config = make_config('tfrecord', str(tmp_path / 'missing'))
  with pytest.raises(FileNotFoundError, match='tfrecord: TFRecord directory') as e:
    input_pipeline.get_dataset_info(config)
  assert '\n' not in str(e.value)
