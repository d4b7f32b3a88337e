"""Something-Something V1 from its official download (JPEG frame folders + CSVs)."""
import os

from input_pipeline.builders import base
from input_pipeline.builders.ssv2 import builder as ssv2

_FRAME_DIR = '20bn-something-something-v1'
_LABELS = 'something-something-v1-labels.csv'
_SPLIT_FILES = {'train': 'something-something-v1-train.csv',
                'validation': 'something-something-v1-validation.csv'}


class Builder(base.VideoBuilder):
  """Something-Something V1: 174 classes, 86,017 train / 11,522 validation clips."""
  name = 'something_something_v1'
  DESCRIPTION = ('Something-Something V1: 174 template actions on objects, stored as '
                 'JPEG frames (12 fps). Label index = line of the labels CSV.')
  HOMEPAGE = ssv2.Builder.HOMEPAGE
  CITATION = ssv2.Builder.CITATION
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
  Download and extract Something-Something V1 so that the manual directory holds:
    {_FRAME_DIR}/<id>/00001.jpg, 00002.jpg, ...   one folder of frames per video
    {_LABELS}       one class name per line, in index order
    {_SPLIT_FILES['train']}        <id>;<class name> per line
    {_SPLIT_FILES['validation']}   same format
  """

  def _read_annotations(self, manual_dir):
    labels_path = os.path.join(manual_dir, _LABELS)
    class_names = [line for _, line in base.read_lines(self.name, labels_path)]
    index = {name: i for i, name in enumerate(class_names)}
    splits = {}
    for split, filename in _SPLIT_FILES.items():
      path = os.path.join(manual_dir, filename)
      clips = []
      for number, line in base.read_lines(f'{self.name} {split}', path):
        where = f'{filename}:{number}'
        video_id, _, name = line.partition(';')
        if name not in index:
          raise base.BuildError(
              f'{self.name} {split}: {where}: expected "<id>;<class name from {_LABELS}>", '
              f'got {line!r}')
        clips.append(base.Clip(os.path.join(manual_dir, _FRAME_DIR, video_id),
                                  index[name], video_id, where))
      splits[split] = clips
    return class_names, splits
