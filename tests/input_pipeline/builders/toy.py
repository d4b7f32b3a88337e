"""The builder package of docs/extending_datasets.md, as a test reads it (TFDS name toy_videos)."""
import os

from input_pipeline.builders import base


class Builder(base.VideoBuilder):
  """Videos in <split>/<class>/ folders; classes.txt lists the classes in index order."""
  name = 'toy_videos'
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  classes.txt              one class name a line (its line is its index)
  train/<class>/<video>    the training videos of each class
  validation/<class>/...   the same for validation
  """

  def _read_annotations(self, manual_dir):
    names = [line for _, line in base.read_lines(self.name, f'{manual_dir}/classes.txt')]
    splits = {}
    for split in ('train', 'validation'):
      paths = [(label, f'{split}/{name}/{video}') for label, name in enumerate(names)
               for video in sorted(os.listdir(f'{manual_dir}/{split}/{name}'))]
      # Clip(file, label, id unique over all splits, where an error message points).
      splits[split] = [base.Clip(f'{manual_dir}/{path}', label, path, path)
                       for label, path in paths]
    return names, splits
