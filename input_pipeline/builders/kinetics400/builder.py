"""Kinetics-400 from the usual downloads (trimmed YouTube clips + the official CSVs)."""
import os

from absl import logging

from input_pipeline import video_io
from input_pipeline.builders import base

_COLUMNS = ('label', 'youtube_id', 'time_start', 'time_end')
# Names the official CSVs go by (DeepMind's, the ActivityNet crawler's, cvdfoundation's).
_PREFIXES = ('', 'kinetics_', 'kinetics400_', 'kinetics-400_', 'kinetics_400_')
_SPLIT_NAMES = {'train': ('train',), 'validation': ('validate', 'val', 'validation')}
_CSV_DIRS = ('', 'annotations')


def clip_name(youtube_id, time_start, time_end):
  """The file stem every Kinetics download uses: ``<youtube_id>_<start:06d>_<end:06d>``."""
  return f'{youtube_id}_{int(float(time_start)):06d}_{int(float(time_end)):06d}'


class Builder(base.VideoBuilder):
  """Kinetics-400: 400 classes, about 240k train / 20k validation 10-second clips."""
  name = 'kinetics400'
  DESCRIPTION = ('Kinetics-400. Class indices follow the sorted class names of the '
                 'train CSV (the order of mmaction\'s label_map_k400.txt).')
  HOMEPAGE = 'https://github.com/google-deepmind/kinetics-i3d'
  CITATION = """@article{kay2017kinetics,
  title={The Kinetics human action video dataset},
  author={Kay, Will and others}, journal={arXiv:1705.06950}, year={2017}}"""
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Put the official CSVs (header label,youtube_id,time_start,time_end,split) in the
  manual directory or its annotations/ folder, named train.csv and validate.csv (or
  val.csv; a kinetics_ / kinetics400_ / kinetics-400_ prefix is accepted), and the
  clips anywhere below the manual directory, named
  <youtube_id>_<time_start:06d>_<time_end:06d>.mp4 (.mkv/.webm/.avi also accepted), e.g.
    train/<label>/<name>.mp4 + val/<label>/<name>.mp4   (ActivityNet crawler)
    train/<name>.mp4 + val/<name>.mp4                   (cvdfoundation tarballs)
  Clips named only <youtube_id>.mp4 are found too. Videos missing from the download
  stop the build unless the builder is created with skip_unreadable=True.
  """

  def _read_annotations(self, manual_dir):
    videos = _index_videos(manual_dir)
    rows = {split: self._read_rows(manual_dir, split) for split in _SPLIT_NAMES}
    class_names = sorted({row['label'] for _, _, row in rows['train']})
    index = {name: i for i, name in enumerate(class_names)}
    splits = {}
    for split, split_rows in rows.items():
      clips = []
      for filename, number, row in split_rows:
        where = f'{filename}:{number}'
        if row['label'] not in index:
          raise base.BuildError(
              f'{self.name} {split}: {where}: label {row["label"]!r} is not among the '
              f'{len(class_names)} classes of the train CSV')
        try:
          name = clip_name(row['youtube_id'], row['time_start'], row['time_end'])
        except ValueError:
          raise base.BuildError(f'{self.name} {split}: {where}: time_start/time_end '
                                   f'are not numbers') from None
        path = videos.get(name) or videos.get(row['youtube_id'])
        path = path or os.path.join(manual_dir, '**', name + '.mp4')  # reported missing
        clips.append(base.Clip(path, index[row['label']], name, where))
      splits[split] = clips
    return class_names, splits

  def _read_rows(self, manual_dir, split):
    """[(csv name, line number, row dict)] of the split's CSV."""
    found = [os.path.join(d, p + n + '.csv') for d in _CSV_DIRS for p in _PREFIXES
             for n in _SPLIT_NAMES[split]
             if os.path.isfile(os.path.join(manual_dir, d, p + n + '.csv'))]
    if len(found) != 1:
      what = 'several CSVs: ' + ', '.join(found) if found else 'no CSV'
      raise base.BuildError(
          f'{self.name} {split}: {what} in {manual_dir} (or annotations/), expected one of '
          f'{", ".join(n + ".csv" for n in _SPLIT_NAMES[split])} (see '
          f'MANUAL_DOWNLOAD_INSTRUCTIONS)')
    path = os.path.join(manual_dir, found[0])
    return [(found[0], number, row) for number, row in
            base.read_csv(f'{self.name} {split}', path, header=_COLUMNS)]


def _index_videos(root):
  """{file stem: path} of every video below root (the split/label folders do not matter)."""
  videos, duplicates = {}, 0
  for folder, subfolders, files in os.walk(root, followlinks=True):
    subfolders.sort()
    for f in sorted(files):
      stem, ext = os.path.splitext(f)
      if ext.lower() in video_io.VIDEO_EXTENSIONS:
        duplicates += stem in videos
        videos.setdefault(stem, os.path.join(folder, f))
  if duplicates:
    logging.warning('kinetics400: %d clips found twice below %s; using the first in '
                    'sorted path order', duplicates, root)
  return videos
