"""The clip format: SequenceExample round trip and the manifest."""
import pytest
import tensorflow as tf

from input_pipeline import features


def test_sequence_example_round_trip():
  serialized = features.encode_sequence_example([b'\xff\xd8a', b'\xff\xd8b'], 3, 'three', 'v1')
  el = features.parse_sequence_example(tf.constant(serialized))
  assert el['frames'].numpy().tolist() == [b'\xff\xd8a', b'\xff\xd8b']
  assert int(el['label']) == 3
  assert el['label_text'].numpy() == b'three' and el['id'].numpy() == b'v1'


def test_missing_label_and_frames_parse_as_invalid_values():
  el = features.parse_sequence_example(tf.constant(tf.train.SequenceExample().SerializeToString()))
  assert int(el['label']) == -1 and el['frames'].shape == (0,)


def test_manifest_round_trip(tmp_path):
  features.write_manifest(str(tmp_path), 'mine', ['a', 'b'], {'train': {'t-0.tfrecord': 4}})
  m = features.read_manifest(str(tmp_path))
  assert m == {'name': 'mine', 'class_names': ['a', 'b'],
               'splits': {'train': {'files': {'t-0.tfrecord': 4}}}}


def test_missing_manifest_is_a_one_line_error(tmp_path):
  with pytest.raises(FileNotFoundError, match='manifest.json not found') as e:
    features.read_manifest(str(tmp_path))
  assert '\n' not in str(e.value)
