"""The build CLI: one real subprocess run, as the README shows it."""
import os
import subprocess
import sys

import tensorflow_datasets as tfds

from input_pipeline import builders
from tests.input_pipeline.builders import fakes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_cli_builds_custom_videos_with_progress_in_clips_per_second(tmp_path):
  manual = os.fspath(tmp_path / 'm')
  fakes.write_video(f'{manual}/a.mp4', seed=0)
  fakes.write_video(f'{manual}/b.mp4', seed=9)
  fakes.write_text(f'{manual}/train.txt', 'a.mp4 jump\nb.mp4 run\n')
  result = subprocess.run(
      [sys.executable, '-m', 'tps_jax.apps.build', '--dataset=custom_videos',
       f'--manual_dir={manual}', f'--data_dir={tmp_path}/d', '--builder_config=res128',
       '--num_workers=2'], cwd=ROOT, capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'clip/s' in result.stderr
  assert 'custom_videos/res128: 2 classes, train 2 clips' in result.stdout
  builder = builders.get_builder('custom_videos', data_dir=f'{tmp_path}/d', config='res128')
  assert builder.info.splits['train'].num_examples == 2
  assert builder.info.features['label'].names == ['jump', 'run']
  assert len(list(tfds.as_numpy(builder.as_dataset('train')))) == 2
