"""custom_videos builder: your own videos + annotation lists, and every bad input."""
import os

import numpy as np
import pytest

from input_pipeline.builders import base
from tests.input_pipeline.builders import fakes


def _videos(root, names=('videos/a.mp4', 'videos/b.avi', 'videos/c.webm', 'videos/d.mp4')):
  root = os.fspath(root)
  for seed, name in enumerate(names):
    fakes.write_video(f'{root}/{name}', seed=10 * seed)
  return root


def _prepare(manual, tmp_path, **kwargs):
  return fakes.prepare('custom_videos', manual, tmp_path / 'd', **kwargs)


def _labels(builder, split):
  return {k: v[0] for k, v in fakes.examples(builder, split).items()}


def test_mmaction_video_lists_with_classes_file(tmp_path):
  manual = _videos(tmp_path / 'm')
  fakes.write_text(f'{manual}/classes.txt', 'cat\ndog\nbird\n')
  fakes.write_text(f'{manual}/train.txt', 'videos/a.mp4 2\nvideos/b.avi 0\n\nvideos/c.webm 1\n')
  fakes.write_text(f'{manual}/val.txt', '# held out\nvideos/d.mp4 1\n')
  builder = _prepare(manual, tmp_path, num_workers=2)
  assert builder.info.features['label'].names == ['cat', 'dog', 'bird']
  train = fakes.examples(builder, 'train')
  assert {k: v[0] for k, v in train.items()} == {'videos/a.mp4': 2, 'videos/b.avi': 0,
                                                 'videos/c.webm': 1}
  assert train['videos/c.webm'][1] == (fakes.FRAMES, 128, 192, 3)
  np.testing.assert_allclose(train['videos/c.webm'][2], fakes.frames(20)[:, 0, 0, 0], atol=4)
  assert _labels(builder, 'validation') == {'videos/d.mp4': 1}


def test_mmaction_frame_folder_list_with_indices_names_classes_by_index(tmp_path):
  manual = os.fspath(tmp_path / 'm')
  fakes.write_frames(f'{manual}/frames/x', seed=0)
  fakes.write_frames(f'{manual}/frames/y', seed=50, num_frames=5)
  fakes.write_text(f'{manual}/train.txt', f'frames/x {fakes.FRAMES} 0\nframes/y 5 3\n')
  builder = _prepare(manual, tmp_path)
  assert builder.info.features['label'].names == ['0', '1', '2', '3']
  train = fakes.examples(builder, 'train')
  assert {k: v[0] for k, v in train.items()} == {'frames/x': 0, 'frames/y': 3}
  assert train['frames/y'][1] == (5, 128, 192, 3)


def test_csv_with_class_names_sorts_names_from_labels(tmp_path):
  # A spreadsheet's CSV: byte-order mark, quoted path with a comma, extra column.
  manual = _videos(tmp_path / 'm', names=('my videos/a, first.mp4', 'b.mp4', 'c.mp4'))
  fakes.write_text(f'{manual}/train.csv',
                   '\ufeffpath,label,notes\n"my videos/a, first.mp4",wave,x\nb.mp4,clap,y\n')
  fakes.write_text(f'{manual}/test.csv', 'label,path\nwave,c.mp4\n')
  builder = _prepare(manual, tmp_path)
  assert builder.info.features['label'].names == ['clap', 'wave']
  assert _labels(builder, 'train') == {'my videos/a, first.mp4': 1, 'b.mp4': 0}
  assert _labels(builder, 'test') == {'c.mp4': 1}


def test_class_names_argument_overrides_classes_file(tmp_path):
  manual = _videos(tmp_path / 'm')
  fakes.write_text(f'{manual}/classes.txt', 'cat\ndog\n')
  names = fakes.write_text(f'{tmp_path}/names.txt', 'dog\ncat\n')
  fakes.write_text(f'{manual}/train.csv', 'path,label\nvideos/a.mp4,cat\n')
  builder = _prepare(manual, tmp_path, class_names=names)
  assert builder.info.features['label'].names == ['dog', 'cat']
  assert _labels(builder, 'train') == {'videos/a.mp4': 1}


# Bad input: each error is one line naming the split, annotation file and line.
_BAD_INPUT = {
    'unreadable_video': (
        {'videos/b.avi': 'garbage' * 100, 'train.txt': 'videos/a.mp4 0\nvideos/b.avi 1\n'},
        r'^custom_videos train: train.txt:2: cannot decode video .*videos/b.avi'),
    'zero_length_video': (
        {'videos/c.webm': '', 'train.csv': 'path,label\nvideos/a.mp4,x\nvideos/c.webm,y\n'},
        r'^custom_videos train: train.csv:3: empty \(zero-byte\) video file: .*videos/c.webm '
        + fakes.SKIP_HINT + '$'),
    'missing_path': (
        {'train.txt': 'videos/a.mp4 0\nvideos/b.avi 1\n',
         'val.txt': 'videos/c.webm 0\nvideos/nope.mp4 1\n'},
        r'^custom_videos validation: val.txt:2: no such file: .*videos/nope.mp4 '
        + fakes.SKIP_HINT + '$'),
    'label_name_not_in_class_list': (
        {'classes.txt': 'cat\ndog\n',
         'train.csv': 'path,label\nvideos/a.mp4,cat\nvideos/b.avi,cow\n'},
        r"^custom_videos train: train.csv:3: label 'cow' is not in the class list "
        r'\(2 class names from .*classes.txt\)$'),
    'label_index_not_in_class_list': (
        {'classes.txt': 'cat\ndog\n', 'train.txt': 'videos/a.mp4 1\nvideos/b.avi 2\n'},
        r'^custom_videos train: train.txt:2: label 2 is not in \[0, 2\)'),
    'duplicate_path': (
        {'train.txt': 'videos/a.mp4 0\nvideos/b.avi 1\n./videos/a.mp4 1\n'},
        r"^custom_videos train: train.txt:3: duplicate 'videos/a.mp4' \(first at train.txt:1\)$"),
    'evaluation_path_also_in_train': (
        {'train.txt': 'videos/a.mp4 0\nvideos/b.avi 1\n', 'val.txt': 'videos/b.avi 1\n'},
        r"^custom_videos validation: val.txt:1: 'videos/b.avi' is also in train "
        r'\(train.txt:2\)$'),
    'mixed_label_formats_in_one_file': (
        {'train.txt': 'videos/a.mp4 0\nvideos/b.avi 1\nvideos/c.webm dog\n'},
        r"^custom_videos train: train.txt:3: label 'dog' is a class name but train.txt:1 "
        r'gave an index'),
    'malformed_line': (
        {'train.txt': 'videos/a.mp4 0\nmy video.mp4 12 cat dog\n'},
        r'^custom_videos train: train.txt:2: expected "path label" or "path num_frames label"'),
    'indices_in_one_file_names_in_another': (
        {'train.txt': 'videos/a.mp4 0\n', 'val.csv': 'path,label\nvideos/b.avi,dog\n'},
        r'^custom_videos: some annotation files give class indices .*add classes.txt'),
    'no_annotation_file': (
        {}, r'^custom_videos: no annotation file .* expected train.txt or train.csv'),
}


@pytest.mark.parametrize('files,message', _BAD_INPUT.values(), ids=_BAD_INPUT.keys())
def test_bad_input_is_one_line_naming_file_and_line(tmp_path, files, message):
  manual = _videos(tmp_path / 'm')
  for name, text in files.items():
    fakes.write_text(f'{manual}/{name}', text)
  with pytest.raises(base.BuildError, match=message) as error:
    _prepare(manual, tmp_path)
  assert '\n' not in str(error.value)


def test_skip_unreadable_writes_skipped_list_and_counts(tmp_path):
  manual = _videos(tmp_path / 'm')
  fakes.write_text(f'{manual}/videos/b.avi', 'garbage')
  fakes.write_text(f'{manual}/train.txt',
                   'videos/a.mp4 0\nvideos/b.avi 1\nvideos/gone.mp4 1\nvideos/c.webm 0\n')
  builder = _prepare(manual, tmp_path, skip_unreadable=True, num_workers=2)
  assert _labels(builder, 'train') == {'videos/a.mp4': 0, 'videos/c.webm': 0}
  assert builder.info.metadata['skipped_train'] == 2
  with open(os.path.join(builder.data_dir, 'skipped_train.txt')) as f:
    listed = sorted(line.split('\t')[:2] for line in f.read().splitlines())
  assert listed == [['train.txt:2', f'{manual}/videos/b.avi'],
                    ['train.txt:3', f'{manual}/videos/gone.mp4']]
