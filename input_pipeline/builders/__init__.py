"""TFDS builders of tps-jax, one package each; importing one registers its TFDS name.

Each package subclasses ``base.VideoBuilder`` and reads a manual directory (nothing is
downloaded) into the clip format of ``input_pipeline.features``. Which package defines
which TFDS name is ``input_pipeline.registry``'s to say; ``input_pipeline.build.prepare``
builds them.
"""
import importlib

from input_pipeline import registry

# TFDS name -> package that defines it (the registry's data sets built from a download).
BUILDERS = {s.tfds_name: s.builder_module for s in registry.buildable().values()}


class BuildError(ValueError):
  """Bad manual data (missing/unreadable file, unknown label, ...): one line, names the file."""


class Interrupted(BuildError):
  """Ctrl-C while preparing: the clips encoded so far are kept, the same command resumes."""


def builder_class(name):
  """Imports and returns the builder class of ``name`` (TFDS name or registry name)."""
  if name not in BUILDERS:
    name = registry.get(name).tfds_name
    if name not in BUILDERS:
      raise ValueError(f'{name!r} is not built from a download; valid names: '
                       f'{", ".join(BUILDERS)}')
  return importlib.import_module(BUILDERS[name]).Builder
