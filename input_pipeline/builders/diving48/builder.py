"""Diving-48 (V2 labels) from its official download (mp4 videos + JSON lists)."""
import os

from input_pipeline.builders import base

_SPLIT_FILES = {'train': 'Diving48_V2_train.json', 'test': 'Diving48_V2_test.json'}
_VOCAB = 'Diving48_vocab.json'


class Builder(base.VideoBuilder):
  """Diving-48 V2: 48 dive classes, about 15k train / 1,970 test clips."""
  name = 'diving48'
  DESCRIPTION = ('Diving-48 with the cleaned V2 labels. Class name = the four vocabulary '
                 'words (takeoff, somersaults, twists, flight) joined by spaces.')
  HOMEPAGE = 'http://www.svcl.ucsd.edu/projects/resound/dataset.html'
  CITATION = """@inproceedings{li2018resound,
  title={RESOUND: Towards action recognition without representation bias},
  author={Li, Yingwei and Li, Yi and Vasconcelos, Nuno},
  booktitle={ECCV}, year={2018}}"""
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
  Download Diving48_rgb.tar.gz and the V2 annotations so that the manual directory holds:
    rgb/<vid_name>.mp4            the trimmed clips
    {_SPLIT_FILES['train']}   [{{"vid_name", "label", "start_frame", "end_frame"}}, ...]
    {_SPLIT_FILES['test']}    same format
    {_VOCAB}          48 lists of [takeoff, somersaults, twists, flight]
  The clips are already trimmed: start_frame/end_frame are not used (as in mmaction).
  """

  def _read_annotations(self, manual_dir):
    vocab = base.read_json(self.name, os.path.join(manual_dir, _VOCAB))
    class_names = [' '.join(words) for words in vocab]
    splits = {}
    for split, filename in _SPLIT_FILES.items():
      path = os.path.join(manual_dir, filename)
      clips = []
      for i, item in enumerate(base.read_json(f'{self.name} {split}', path)):
        where = f'{filename}[{i}]'
        label = item['label']
        if not isinstance(label, int) or not 0 <= label < len(class_names):
          raise base.BuildError(
              f'{self.name} {split}: {where}: label {label!r} is not in '
              f'[0, {len(class_names)}) of {_VOCAB}')
        video = os.path.join(manual_dir, 'rgb', f'{item["vid_name"]}.mp4')
        clips.append(base.Clip(video, label, item['vid_name'], where))
      splits[split] = clips
    return class_names, splits
