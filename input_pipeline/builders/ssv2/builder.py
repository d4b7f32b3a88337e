"""Something-Something V2 from its official download (webm videos + label JSONs)."""
import os

from input_pipeline.builders import _common

_VIDEO_DIR = '20bn-something-something-v2'
_SPLIT_FILES = {'train': 'train.json', 'validation': 'validation.json'}


def template_to_class(template):
  """The labels.json key of an annotation's template, normalised as mmaction does.

  ``"Putting [something] on [something]"`` -> ``"Putting something on something"``.
  """
  return template.replace('[', '').replace(']', '')


class Builder(_common.VideoBuilder):
  """Something-Something V2: 174 classes, 168,913 train / 24,777 validation videos."""
  name = 'something_something_v2'
  DESCRIPTION = ('Something-Something V2: 174 template actions on objects (test split '
                 'unlabelled, not built). Label index = the value in labels.json.')
  HOMEPAGE = 'https://developer.qualcomm.com/software/ai-datasets/something-something'
  CITATION = """@inproceedings{goyal2017something,
  title={The "something something" video database for learning and evaluating visual
         common sense},
  author={Goyal, Raghav and others},
  booktitle={ICCV}, year={2017}}"""
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
  Download and extract Something-Something V2 (videos and labels) so that the manual
  directory holds:
    {_VIDEO_DIR}/<id>.webm       the 220,847 videos
    labels/labels.json           {{"<template without brackets>": "<index>", ...}}
    labels/train.json            [{{"id", "label", "template", "placeholders"}}, ...]
    labels/validation.json       same format
  labels/test.json (unlabelled) is not used.
  """

  def _read_annotations(self, manual_dir):
    labels_path = os.path.join(manual_dir, 'labels', 'labels.json')
    mapping = _common.read_json(self.name, labels_path)
    class_names = sorted(mapping, key=lambda name: int(mapping[name]))
    if [int(mapping[n]) for n in class_names] != list(range(len(class_names))):
      raise _common.BuildError(
          f'{self.name}: {labels_path}: indices are not 0..{len(class_names) - 1}')
    splits = {}
    for split, filename in _SPLIT_FILES.items():
      path = os.path.join(manual_dir, 'labels', filename)
      clips = []
      for i, item in enumerate(_common.read_json(f'{self.name} {split}', path)):
        where = f'labels/{filename}[{i}]'
        name = template_to_class(item['template'])
        if name not in mapping:
          raise _common.BuildError(
              f'{self.name} {split}: {where}: template {item["template"]!r} is not in '
              f'labels/labels.json')
        video = os.path.join(manual_dir, _VIDEO_DIR, f'{item["id"]}.webm')
        clips.append(_common.Clip(video, int(mapping[name]), str(item['id']), where))
      splits[split] = clips
    return class_names, splits
