"""A data set of your own: videos (or JPEG frame folders) listed in annotation files.

The manual directory holds one annotation file per split, in either format users of
mmaction / other tools already have:

* ``train.txt``: ``relative/path.mp4 <label>`` per line, or ``frames/folder <num_frames>
  <label>`` for a folder of JPEG frames (mmaction's video and rawframe lists);
* ``train.csv``: a header with ``path,label`` (other columns ignored; quote paths with
  commas), a video file or frame folder per row.

Labels are class indices (digits) or class names, one kind per file. Class names come
from the ``class_names`` builder argument (a file, one name per line, or a list), else
from ``classes.txt`` in the manual directory, else from the labels themselves: the sorted
names, or ``'0' .. str(max index)`` for indices.
"""
import os
import re

from input_pipeline.builders import base

# Annotation file stem -> split name (the other builders' names).
_SPLITS = {'train': 'train', 'val': 'validation', 'validation': 'validation', 'test': 'test'}
_CLASSES_FILE = 'classes.txt'


class Builder(base.VideoBuilder):
  """Videos of your own, listed in train/val/test annotation files (see module doc)."""
  name = 'custom_videos'
  DESCRIPTION = 'A video classification data set built from a folder of the user\'s videos.'
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Put in the manual directory one annotation file per split: train.txt / val.txt /
  test.txt (lines "relative/path.mp4 label" or "frame/folder num_frames label") or
  train.csv / val.csv / test.csv (header "path,label"), with paths relative to the
  manual directory (or absolute), and optionally classes.txt (one class name per line,
  line i = class index i). Labels may be indices or class names, one kind per file.
  """

  def __init__(self, *, class_names=None, **kwargs):
    """See VideoBuilder; class_names: a file of class names (one per line) or a list."""
    self._class_names = class_names
    super().__init__(**kwargs)

  def _read_annotations(self, manual_dir):
    entries = {}  # split -> [(where, path, label token)]
    for stem, split in _SPLITS.items():
      found = [f for f in (stem + '.txt', stem + '.csv')
               if os.path.isfile(os.path.join(manual_dir, f))]
      if split in entries and found:
        raise base.BuildError(f'{self.name}: both val and validation annotation files '
                                 f'in {manual_dir}; keep one')
      if len(found) > 1:
        raise base.BuildError(f'{self.name}: both {found[0]} and {found[1]} in '
                                 f'{manual_dir}; keep one')
      if found:
        entries[split] = self._read_list(split, manual_dir, found[0])
    if not entries:
      raise base.BuildError(
          f'{self.name}: no annotation file in {manual_dir}: expected train.txt or '
          f'train.csv (and val/test), see MANUAL_DOWNLOAD_INSTRUCTIONS')
    class_names, source = self._resolve_class_names(manual_dir, entries)
    index = {name: i for i, name in enumerate(class_names)}
    splits = {}
    for split, rows in entries.items():
      clips = []
      for where, path, label in rows:
        if _is_index(label):
          if not 0 <= int(label) < len(class_names):
            raise base.BuildError(f'{self.name} {split}: {where}: label {label} is not '
                                     f'in [0, {len(class_names)}) ({source})')
          label = int(label)
        elif label in index:
          label = index[label]
        else:
          raise base.BuildError(f'{self.name} {split}: {where}: label {label!r} is not '
                                   f'in the class list ({source})')
        clips.append(base.Clip(os.path.join(manual_dir, path), label,
                                  os.path.normpath(path), where))
      splits[split] = clips
    return class_names, splits

  def _read_list(self, split, manual_dir, filename):
    """[(where, path, label token)] of one annotation file, one label kind per file."""
    path, context = os.path.join(manual_dir, filename), f'{self.name} {split}'
    rows, first = [], None
    if filename.endswith('.csv'):
      lines = ((n, (r['path'], r['label']))
               for n, r in base.read_csv(context, path, header=('path', 'label')))
    else:
      lines = ((n, self._split_line(context, f'{filename}:{n}', manual_dir, line))
               for n, line in base.read_lines(context, path))
    for number, (video, label) in lines:
      where = f'{filename}:{number}'
      if not video or not label:
        raise base.BuildError(f'{context}: {where}: empty path or label')
      if first is None:
        first = (where, _is_index(label))
      elif _is_index(label) != first[1]:
        kinds = ('a class name', 'an index')
        raise base.BuildError(
            f'{context}: {where}: label {label!r} is {kinds[_is_index(label)]} but '
            f'{first[0]} gave {kinds[first[1]]}; use one label format per file')
      rows.append((where, video, label))
    return rows

  def _split_line(self, context, where, manual_dir, line):
    """'path label' or 'path num_frames label' (mmaction lists) -> (path, label)."""
    tokens = line.split()
    if len(tokens) == 3 and tokens[1].isdigit():
      if os.path.isfile(os.path.join(manual_dir, tokens[0])):
        raise base.BuildError(f'{context}: {where}: "path num_frames label" is for '
                                 f'frame folders, but {tokens[0]} is a file')
      return tokens[0], tokens[2]
    if len(tokens) == 2:
      return tuple(tokens)
    raise base.BuildError(
        f'{context}: {where}: expected "path label" or "path num_frames label", got '
        f'{line!r} (for paths with spaces use a CSV with a quoted path)')

  def _resolve_class_names(self, manual_dir, entries):
    """(class names, where they came from) for error messages."""
    names = self._class_names
    if names is None and os.path.isfile(os.path.join(manual_dir, _CLASSES_FILE)):
      names = os.path.join(manual_dir, _CLASSES_FILE)
    if isinstance(names, (str, os.PathLike)):
      source = f'class names from {os.fspath(names)}'
      names = [line for _, line in base.read_lines(self.name, names)]
      return names, f'{len(names)} {source}'
    if names is not None:
      return list(names), f'{len(names)} class names given'
    labels = [label for rows in entries.values() for _, _, label in rows]
    kinds = {split: _is_index(rows[0][2]) for split, rows in entries.items() if rows}
    if len(set(kinds.values())) > 1:
      found = ', '.join(f'{split}: {("names", "indices")[k]}' for split, k in kinds.items())
      raise base.BuildError(
          f'{self.name}: some annotation files give class indices and others class names '
          f'({found}); add {_CLASSES_FILE} to the manual dir or pass class_names')
    if any(kinds.values()):
      count = max(int(label) for label in labels) + 1
      return [str(i) for i in range(count)], f'{count} classes, from the largest index'
    names = sorted(set(labels))
    return names, f'{len(names)} classes, from the labels'


def _is_index(label):
  return re.fullmatch(r'-?\d+', label) is not None
