"""Readers: per-process ranges, deterministic record order, record validation."""
import pytest
import tensorflow as tf

from input_pipeline import readers
from tests.input_pipeline import fakes


def _records(ranges, layout):
  """The global record numbers that ranges over `layout` [(path, skip, take)] cover."""
  starts, pos = {}, 0
  for path, skip, take in layout:
    starts[path] = pos - skip
    pos += take
  return [starts[p] + i for p, s, t in ranges for i in range(s, s + t)]


@pytest.mark.parametrize('counts,process_count', [
    ((10,), 3), ((4, 4, 4, 4), 2), ((3, 1, 7), 4), ((5, 5), 8), ((2,), 1)])
def test_process_ranges_are_disjoint_and_cover_the_split(counts, process_count):
  layout = [(f'f{i}', 0, c) for i, c in enumerate(counts)]
  seen = [_records(readers.process_ranges(layout, p, process_count), layout)
          for p in range(process_count)]
  flat = sorted(r for s in seen for r in s)
  assert flat == list(range(sum(counts)))
  sizes = [len(s) for s in seen]
  assert max(sizes) - min(sizes) <= 1


def test_process_ranges_respect_an_existing_skip():
  ranges = readers.process_ranges([('a', 5, 4), ('b', 0, 4)], 1, 2)
  assert ranges == [('b', 0, 4)]
  assert readers.process_ranges([('a', 5, 4)], 0, 2) == [('a', 5, 2)]


def test_process_index_out_of_range_raises():
  with pytest.raises(ValueError, match='process_index'):
    readers.process_ranges([('a', 0, 4)], 2, 2)


def _write_numbers(tmp_path, counts):
  ranges = []
  n = 0
  for i, c in enumerate(counts):
    path = str(tmp_path / f'f{i}.tfrecord')
    with tf.io.TFRecordWriter(path) as w:
      for _ in range(c):
        w.write(str(n).encode())
        n += 1
    ranges.append((path, 0, c))
  return ranges


def test_shuffled_stream_is_a_permutation_fixed_by_the_key(tmp_path):
  ranges = _write_numbers(tmp_path, [7, 5, 9])
  read = lambda key: [int(r) for r in readers.record_stream(
      ranges, cycle_length=2, shuffle_key=tf.constant(key, tf.int64),
      shuffle_block=6).as_numpy_iterator()]
  a, b, c = read([1, 2]), read([1, 2]), read([1, 3])
  assert sorted(a) == list(range(21))
  assert a == b and a != c


def test_unshuffled_stream_keeps_file_order(tmp_path):
  ranges = _write_numbers(tmp_path, [3, 4])
  out = [int(r) for r in readers.record_stream(ranges).as_numpy_iterator()]
  assert out == list(range(7))


def _validate(element, num_classes=3):
  ok, reason = readers.validate(element, num_classes)
  return bool(ok), reason.numpy().decode()


def _element(frames, label=1):
  return {'frames': tf.constant(frames, tf.string), 'label': tf.constant(label, tf.int64)}


def test_validate_accepts_a_good_record():
  assert _validate(_element([fakes.jpeg(0), fakes.jpeg(9)])) == (True, '')


def test_validate_rejects_a_record_without_frames():
  assert _validate(_element(tf.zeros([0], tf.string))) == (False, 'the record has no frames')


def test_validate_rejects_a_label_outside_the_classes():
  assert _validate(_element([fakes.jpeg(0)], label=3)) == (False, 'label 3 outside [0, 3)')
  assert _validate(_element([fakes.jpeg(0)], label=-1))[0] is False


def test_validate_rejects_truncated_and_non_jpeg_frames():
  good = fakes.jpeg(0)
  ok, reason = _validate(_element([good, good[:len(good) // 2]]))
  assert not ok and reason.startswith('frame 1 is not a complete JPEG')
  assert _validate(_element([b'not a jpeg at all', good]))[1].startswith('frame 0')


def test_tfrecord_source_reads_the_manifest(tmp_path):
  fakes.write_split(tmp_path, 'train', [fakes.clip(k % 3) for k in range(5)], ['a', 'b', 'c'])
  src = readers.tfrecord_source(str(tmp_path), 'train', 'fake')
  assert src.num_examples == 5 and src.class_names == ('a', 'b', 'c')
  element = next(iter(tf.data.TFRecordDataset(src.shards[0][0]).map(src.parse)))
  assert element['frames'].shape == (6,) and int(element['label']) == 0
  assert element['label_text'].numpy() == b'a'


def test_tfrecord_source_missing_directory_is_a_one_line_error(tmp_path):
  with pytest.raises(FileNotFoundError, match='mine: TFRecord directory') as e:
    readers.tfrecord_source(str(tmp_path / 'nope'), 'train', 'mine')
  assert '\n' not in str(e.value)


def test_tfrecord_source_missing_listed_file_names_it(tmp_path):
  fakes.write_split(tmp_path, 'train', [fakes.clip(0)], ['a'], num_shards=1)
  (tmp_path / 'train-00000-of-00001.tfrecord').unlink()
  with pytest.raises(FileNotFoundError, match='train-00000-of-00001.tfrecord'):
    readers.tfrecord_source(str(tmp_path), 'train', 'fake')


def test_tfrecord_source_unknown_split_lists_the_splits(tmp_path):
  fakes.write_split(tmp_path, 'train', [fakes.clip(0)], ['a'], num_shards=1)
  with pytest.raises(ValueError, match=r"no split 'test'.*\(splits: train\)"):
    readers.tfrecord_source(str(tmp_path), 'test', 'fake')
