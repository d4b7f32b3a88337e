"""The on-disk clip format shared by every builder and reader in tps-jax.

Two containers hold the same thing, a clip = JPEG frames + label + id:

* TFDS builders (``tfds.load`` / ``builder.as_dataset``) use :func:`tfds_features`:
  ``video`` is a ``tfds.features.Video`` whose frames are stored JPEG-encoded, read with
  ``decoders={'video': tfds.decode.SkipDecoding()}`` so frames are sampled *before* they
  are decoded (dmvr's order).
* Plain directories of TFRecords (users who already have shards) hold
  ``tf.train.SequenceExample`` records with the DMVR / scenic keys below, next to a
  ``manifest.json`` (class names, example counts per split).

Both readers yield the same element: ``{'frames': string[T] (JPEG), 'label': int64,
'label_text': string, 'id': string}``.
"""
import json

from etils import epath

# DMVR keys (scenic's video TFRecords use the same ones).
FRAMES_KEY = 'image/encoded'        # feature list, one JPEG bytes per frame
LABEL_INDEX_KEY = 'clip/label/index'  # context int64
LABEL_TEXT_KEY = 'clip/label/text'    # context bytes
ID_KEY = 'clip/id'                    # context bytes: source video path / id
MANIFEST = 'manifest.json'


class NotPreparedError(FileNotFoundError):
  """No prepared data where ``config.dataset`` points: one line saying how to prepare it."""


def tfds_features(class_names=None):
  """The TFDS feature spec of every tps-jax builder.

  ``class_names=None`` leaves the label names unset, for builders that read them from the
  manual dir in ``_split_generators`` (they are saved with the data set).

  Pass ``video`` as a list of ``io.BytesIO(jpeg_bytes)``: TFDS then stores the bytes as
  they are (no re-encode in the writer process), so decoding/resizing/encoding can run in
  worker processes. A ``(T, H, W, 3)`` uint8 array also works (encoded by TFDS).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds.features.FeaturesDict({
      'video': tfds.features.Video(shape=(None, None, None, 3), encoding_format='jpeg'),
      'label': (tfds.features.ClassLabel() if class_names is None
                else tfds.features.ClassLabel(names=list(class_names))),
      'id': tfds.features.Text(),
  })


def encode_sequence_example(jpeg_frames, label: int, label_text: str, clip_id: str) -> bytes:
  """Serialises one clip as a DMVR-style `tf.train.SequenceExample` (keys above)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  bytes_feature = lambda v: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))
  context = tf.train.Features(feature={
      LABEL_INDEX_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
      LABEL_TEXT_KEY: bytes_feature(label_text.encode()),
      ID_KEY: bytes_feature(clip_id.encode()),
  })
  frames = tf.train.FeatureList(feature=[bytes_feature(j) for j in jpeg_frames])
  return tf.train.SequenceExample(
      context=context,
      feature_lists=tf.train.FeatureLists(feature_list={FRAMES_KEY: frames}),
  ).SerializeToString()


def parse_sequence_example(serialized):
  """Parses `encode_sequence_example` output (a scalar string tensor) to the element.

  A missing label parses as -1 and missing frames as an empty list, so that the reader's
  validation, not the parser, reports them with the record id.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  context, sequence = tf.io.parse_single_sequence_example(
      serialized,
      context_features={
          LABEL_INDEX_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
          LABEL_TEXT_KEY: tf.io.FixedLenFeature([], tf.string, default_value=''),
          ID_KEY: tf.io.FixedLenFeature([], tf.string, default_value=''),
      },
      sequence_features={
          FRAMES_KEY: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True),
      })
  return {'frames': sequence[FRAMES_KEY], 'label': context[LABEL_INDEX_KEY],
          'label_text': context[LABEL_TEXT_KEY], 'id': context[ID_KEY]}


def write_manifest(directory, name: str, class_names, split_files) -> None:
  """Writes `manifest.json` of a TFRecord directory.

  Args:
    directory: the directory holding the TFRecord files.
    name: data set name (used in messages).
    class_names: label index -> name.
    split_files: {split: {file name relative to directory: number of records}}, files
      in reading order.
  """
  manifest = {'name': name, 'class_names': list(class_names),
              'splits': {s: {'files': dict(f)} for s, f in split_files.items()}}
  (epath.Path(directory) / MANIFEST).write_text(json.dumps(manifest, indent=1))


def read_manifest(directory) -> dict:
  """Reads `manifest.json` (see `write_manifest`); a one-line error if it is missing."""
  path = epath.Path(directory) / MANIFEST  # local or gs://
  if not path.is_file():
    raise NotPreparedError(f'{path} not found: a TFRecord data set directory needs a '
                           f'{MANIFEST} (see input_pipeline.features.write_manifest)')
  return json.loads(path.read_text())
