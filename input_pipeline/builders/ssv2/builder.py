"""Something-Something V2 from its official download (webm videos + label JSONs)."""
import os

from input_pipeline.builders import base

_VIDEO_DIR = '20bn-something-something-v2'
# Annotation file -> the names it goes by: as the release ships it, and as mmaction's
# scripts rename it (labels/labels.json, ...). Looked for in the manual directory and
# its direct subfolders (labels/, annotations/, ...).
_FILES = {kind: (f'something-something-v2-{kind}.json', f'{kind}.json')
          for kind in ('labels', 'train', 'validation')}
_SPLITS = ('train', 'validation')


def template_to_class(template):
  """The labels.json key of an annotation's template, normalised as mmaction does.

  ``"Putting [something] on [something]"`` -> ``"Putting something on something"``.
  """
  return template.replace('[', '').replace(']', '')


class Builder(base.VideoBuilder):
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
    {_VIDEO_DIR}/<id>.webm                 the 220,847 videos
    something-something-v2-labels.json     {{"<template without brackets>": "<index>", ...}}
    something-something-v2-train.json      [{{"id", "label", "template", "placeholders"}}, ...]
    something-something-v2-validation.json same format
  The JSONs may sit in the manual directory or one folder below (labels/, as the
  release's label zip extracts), and may be named labels.json / train.json /
  validation.json instead (mmaction's names). The unlabelled test JSON is not used.
  """

  def _read_annotations(self, manual_dir):
    find = lambda kind: base.find_annotation(self.name, manual_dir, _FILES[kind],
                                                skip_dirs=(_VIDEO_DIR,))
    labels_path = find('labels')
    labels_name = os.path.relpath(labels_path, manual_dir)
    mapping = base.read_json(self.name, labels_path)
    class_names = sorted(mapping, key=lambda name: int(mapping[name]))
    if [int(mapping[n]) for n in class_names] != list(range(len(class_names))):
      raise base.BuildError(
          f'{self.name}: {labels_path}: indices are not 0..{len(class_names) - 1}')
    splits = {}
    for split in _SPLITS:
      path = find(split)
      filename = os.path.relpath(path, manual_dir)
      clips = []
      for i, item in enumerate(base.read_json(f'{self.name} {split}', path)):
        where = f'{filename}[{i}]'
        name = template_to_class(item['template'])
        if name not in mapping:
          raise base.BuildError(
              f'{self.name} {split}: {where}: template {item["template"]!r} is not in '
              f'{labels_name}')
        video = os.path.join(manual_dir, _VIDEO_DIR, f'{item["id"]}.webm')
        clips.append(base.Clip(video, int(mapping[name]), str(item['id']), where))
      splits[split] = clips
    return class_names, splits
