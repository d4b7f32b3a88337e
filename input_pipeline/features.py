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
# DMVR keys (scenic's video TFRecords use the same ones).
FRAMES_KEY = 'image/encoded'        # feature list, one JPEG bytes per frame
LABEL_INDEX_KEY = 'clip/label/index'  # context int64
LABEL_TEXT_KEY = 'clip/label/text'    # context bytes
ID_KEY = 'clip/id'                    # context bytes: source video path / id
MANIFEST = 'manifest.json'


def tfds_features(class_names):
  """The TFDS feature spec of every tps-jax builder.

  Pass ``video`` as a list of ``io.BytesIO(jpeg_bytes)``: TFDS then stores the bytes as
  they are (no re-encode in the writer process), so decoding/resizing/encoding can run in
  worker processes. A ``(T, H, W, 3)`` uint8 array also works (encoded by TFDS).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds.features.FeaturesDict({
      'video': tfds.features.Video(shape=(None, None, None, 3), encoding_format='jpeg'),
      'label': tfds.features.ClassLabel(names=list(class_names)),
      'id': tfds.features.Text(),
  })
