"""TFDS builders of tps-jax, one package each; importing one registers its TFDS name.

``get_builder('something_something_v2', data_dir=..., config='res128')`` imports the
right package and returns ``tfds.builder(...)``. Every builder reads a manual directory
(nothing is downloaded) and writes the clip format of ``input_pipeline.features``.
"""
import importlib

# TFDS name -> package that defines it.
BUILDERS = {
    'something_something_v2': 'input_pipeline.builders.ssv2',
    'something_something_v1': 'input_pipeline.builders.ssv1',
    'kinetics400': 'input_pipeline.builders.kinetics400',
    'diving48': 'input_pipeline.builders.diving48',
    'custom_videos': 'input_pipeline.builders.custom',
}


class BuildError(ValueError):
  """Bad manual data (missing/unreadable file, unknown label, ...): one line, names the file."""


def builder_class(name):
  """Imports and returns the builder class registered as ``name``."""
  if name not in BUILDERS:
    raise ValueError(f'unknown data set {name!r}; valid names: {", ".join(BUILDERS)}')
  return importlib.import_module(BUILDERS[name]).Builder


def get_builder(name, **kwargs):
  """``tfds.builder(name, **kwargs)`` after registering ``name`` (see ``BUILDERS``)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder_class(name)
  return tfds.builder(name, **kwargs)
