"""The build app (`python -m tps_jax.apps.build`): real subprocess runs, as docs/datasets.md shows them."""
import os
import subprocess
import sys

import pytest
import tensorflow_datasets as tfds

from input_pipeline import build
from tests.input_pipeline.builders import fakes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
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
  builder = build.tfds_builder(fakes.dataset('custom_videos', f'{tmp_path}/d'))
  assert builder.info.splits['train'].num_examples == 2
  assert builder.info.features['label'].names == ['jump', 'run']
  assert len(list(tfds.as_numpy(builder.as_dataset('train')))) == 2


@pytest.mark.slow
def test_cli_builds_the_data_set_of_a_config_file_and_names_a_bad_flag(tmp_path):
  manual = os.fspath(tmp_path / 'm')
  fakes.write_video(f'{manual}/a.mp4', seed=0)
  fakes.write_text(f'{manual}/train.txt', 'a.mp4 jump\n')
  run = lambda *flags: subprocess.run(
      [sys.executable, '-m', 'tps_jax.apps.build', '--config=configs/custom_tps.py',
       f'--config.dataset.manual_dir={manual}', '--config.dataset.builder_config=res128',
       '--num_workers=0', *flags], cwd=ROOT, capture_output=True, text=True, check=False)
  # --data_dir beats config.dataset.data_dir (unset here: TFDS's default).
  result = run(f'--data_dir={tmp_path}/d')
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'custom_videos/res128: 1 classes, train 1 clips' in result.stdout
  assert build.tfds_builder(fakes.dataset('custom_videos', f'{tmp_path}/d')).is_prepared()
  wrong = run(f'--data_dir={tmp_path}/d', '--dataset=ssv2')
  assert wrong.returncode == 1
  assert wrong.stderr.strip().splitlines()[-1].endswith(
      'build: --dataset=ssv2 but the config builds custom: pass one of them')
  typo = run('--config.dataset.manual_dri=x')
  assert typo.returncode == 1 and 'Traceback' not in typo.stderr
  assert typo.stderr.strip().splitlines()[-1].startswith(
      "build: bad flag: no such config field 'manual_dri'")


@pytest.mark.slow
def test_cli_builds_into_a_gs_data_dir_that_tfds_reads_back(gcs, tmp_path):
  manual = os.fspath(tmp_path / 'm')
  fakes.write_video(f'{manual}/a.mp4', seed=0)
  fakes.write_video(f'{manual}/b.mp4', seed=9)
  fakes.write_text(f'{manual}/train.txt', 'a.mp4 jump\nb.mp4 run\n')
  data_dir = 'gs://tps-test/built'
  result = subprocess.run(
      [sys.executable, '-m', 'tps_jax.apps.build', '--dataset=custom_videos',
       f'--manual_dir={manual}', f'--data_dir={data_dir}', '--builder_config=res128',
       '--num_workers=0'], cwd=ROOT, capture_output=True, text=True, check=False,
      env=dict(os.environ, HOME=str(tmp_path), **gcs.env))  # HOME: the resume cache
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'custom_videos/res128: 2 classes, train 2 clips' in result.stdout
  builder = build.tfds_builder(fakes.dataset('custom_videos', data_dir))
  assert builder.is_prepared() and builder.info.features['label'].names == ['jump', 'run']
  assert len(list(tfds.as_numpy(builder.as_dataset('train')))) == 2
  assert not os.path.exists(os.path.join(ROOT, 'gs:'))
