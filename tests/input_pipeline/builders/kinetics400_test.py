"""Kinetics-400 builder on tiny fake downloads in the two common layouts."""
import os

import pytest

from input_pipeline.builders import base
from tests.input_pipeline.builders import fakes

_HEADER = 'label,youtube_id,time_start,time_end,split\n'
_TRAIN = [('riding a bike', 'bike1', 10, 20), ('abseiling', 'abs1', 0, 10),
          ('passing American football (in game)', 'foot1', 5, 15)]
_VAL = [('abseiling', 'abs2', 30, 40)]


def _manual_dir(root, label_folders, csv_names=('kinetics-400_train.csv',
                                                 'kinetics-400_val.csv')):
  """label_folders: <split>/<label>/<clip>.mp4 (crawler) or <split>/<clip>.mp4 (tarballs)."""
  root = os.fspath(root)
  for (split, rows), csv_name in zip((('train', _TRAIN), ('val', _VAL)), csv_names):
    fakes.write_text(f'{root}/{csv_name}', _HEADER + ''.join(
        f'"{label}",{vid},{start},{end},{split}\n' for label, vid, start, end in rows))
    for seed, (label, vid, start, end) in enumerate(rows):
      folder = f'{root}/{split}/{label}' if label_folders else f'{root}/{split}'
      fakes.write_video(f'{folder}/{vid}_{start:06d}_{end:06d}.mp4', seed=seed)
  return root


@pytest.mark.parametrize('label_folders,csv_names', [
    (True, ('kinetics-400_train.csv', 'kinetics-400_val.csv')),
    (False, ('annotations/train.csv', 'annotations/validate.csv'))])
def test_builds_either_layout_with_sorted_class_indices(tmp_path, label_folders, csv_names):
  manual = _manual_dir(tmp_path / 'm', label_folders, csv_names)
  builder = fakes.prepare('kinetics400', manual, tmp_path / 'd')
  assert builder.info.features['label'].names == [
      'abseiling', 'passing American football (in game)', 'riding a bike']
  train = fakes.examples(builder, 'train')
  assert {k: v[0] for k, v in train.items()} == {
      'bike1_000010_000020': 2, 'abs1_000000_000010': 0, 'foot1_000005_000015': 1}
  assert train['abs1_000000_000010'][1] == (fakes.FRAMES, 128, 192, 3)
  assert {k: v[0] for k, v in fakes.examples(builder, 'validation').items()} == {
      'abs2_000030_000040': 0}


def test_missing_video_names_split_csv_line_and_clip(tmp_path):
  manual = _manual_dir(tmp_path / 'm', label_folders=True)
  os.remove(f'{manual}/train/abseiling/abs1_000000_000010.mp4')
  with pytest.raises(base.BuildError, match=r'^kinetics400 train: kinetics-400_train.csv:3: '
                     r'no such file: .*abs1_000000_000010.mp4 ' + fakes.SKIP_HINT + '$'):
    fakes.prepare('kinetics400', manual, tmp_path / 'd')


def test_missing_csv_names_split_and_expected_files(tmp_path):
  manual = _manual_dir(tmp_path / 'm', label_folders=False)
  os.remove(f'{manual}/kinetics-400_val.csv')
  with pytest.raises(base.BuildError, match=r'^kinetics400 validation: no CSV .*validate.csv'):
    fakes.prepare('kinetics400', manual, tmp_path / 'd')


def test_validation_label_unseen_in_train_is_an_error(tmp_path):
  manual = _manual_dir(tmp_path / 'm', label_folders=False)
  fakes.write_text(f'{manual}/kinetics-400_val.csv', _HEADER + 'archery,abs2,30,40,val\n')
  with pytest.raises(base.BuildError, match=r'^kinetics400 validation: '
                     r'kinetics-400_val.csv:2: label .archery. is not among the 3 classes'):
    fakes.prepare('kinetics400', manual, tmp_path / 'd')


def test_skip_unreadable_skips_counts_and_lists_missing_and_broken(tmp_path):
  manual = _manual_dir(tmp_path / 'm', label_folders=False)
  os.remove(f'{manual}/train/abs1_000000_000010.mp4')
  open(f'{manual}/train/foot1_000005_000015.mp4', 'w').close()
  builder = fakes.prepare('kinetics400', manual, tmp_path / 'd', skip_unreadable=True,
                          num_workers=2)
  assert list(fakes.examples(builder, 'train')) == ['bike1_000010_000020']
  assert builder.info.metadata['skipped_train'] == 2
  assert builder.info.metadata['skipped_validation'] == 0
  with open(os.path.join(builder.data_dir, 'skipped_train.txt')) as f:
    lines = f.read().splitlines()
  assert [line.split('\t')[0] for line in lines] == ['kinetics-400_train.csv:3',
                                                     'kinetics-400_train.csv:4']
  assert 'no such file' in lines[0] and 'empty (zero-byte)' in lines[1]
