"""The README's commands, run as written on tiny stand-ins for the data, weights and model.

Each test runs the commands that ``tests/readme_test.py``'s ``RUNS`` maps to it, taken from
README.md: its placeholders (``/data/<set>``, ``$TFDS``, ``workdir/``, the ImageNet file)
become temporary paths, and ``main.py`` gets flags appended that only shrink the run (a
one-stage model, 8 frames of 28 px, 2 steps).
"""
import json
import re
import shlex
import subprocess
import sys

import pytest

from tests import readme_test
from tests.conftest import ROOT
from tests.input_pipeline.builders.kinetics400_test import _manual_dir as k400_release
from tests.input_pipeline.builders.ssv2_test import _manual_dir as ssv2_release
from tests.main_runs import ENV
from tests.train_test import _imagenet_swin_file

pytestmark = pytest.mark.slow  # builds and main.py runs in subprocesses

# The model of configs/test.py (so that _imagenet_swin_file's 2D Swin inflates onto it).
TINY = ('--config.model.embed_dim=8', '--config.model.depths=(2,)',
        '--config.model.num_heads=(1,)', '--config.input.num_frames=8',
        '--config.input.image_size=28', '--config.input.eval_image_size=28',
        '--config.input.min_resize=32', '--config.num_train_steps=2', '--config.batch_size=2',
        '--config.eval_batch_size=2', '--config.optim.warmup_epochs=0',
        '--config.checkpoint.asynchronous=False', '--config.profile_steps=0')


def _run(argv, substitutions, *extra):
  """Runs one README command (``python`` -> this interpreter) with its placeholders replaced;
  returns stdout + stderr, failing the test with its end when it exits non-zero."""
  if substitutions:
    pattern = re.compile('|'.join(map(re.escape, substitutions)))
    argv = [pattern.sub(lambda m: substitutions[m.group()], a) for a in argv]
  if argv[0].endswith('python'):
    argv[0] = sys.executable
  env = {k: v for k, v in ENV.items() if k != 'XLA_FLAGS'}  # one CPU device
  done = subprocess.run([*argv, *extra], cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=600, check=False)
  assert done.returncode == 0, (argv, done.stderr[-3000:])
  return done.stdout + done.stderr


def _json(path):
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def test_make_demo_trains_and_evaluates_the_demo_config(data_dir, tmp_path):
  assert readme_test.commands_run_by(readme_test.DEMO) == ['make demo']
  workdir = tmp_path / 'demo'
  dry = subprocess.run(['make', '-n', 'demo', f'WORKDIR={workdir}'], cwd=ROOT,
                       capture_output=True, text=True, check=True)  # -n: prints, runs nothing
  [line] = [x for x in dry.stdout.splitlines() if ' main.py ' in x]
  argv = shlex.split(line)
  assert argv[1:] == ['main.py', '--config=configs/synthetic_tps.py', f'--workdir={workdir}']
  # The demo's model and recipe on reversal_pairs/tiny (the session's), 2 steps.
  _run(argv, {}, '--config.dataset.builder_config=tiny', f'--config.dataset.data_dir={data_dir}',
       '--config.num_train_steps=2', '--config.batch_size=4', '--config.eval_batch_size=4',
       '--config.checkpoint.asynchronous=False', '--config.profile_steps=0')
  metrics = _json(workdir / 'metrics.json')
  assert metrics['step'] == 2 and metrics['finished'] and metrics['eval'], metrics


def test_paper_commands_run_on_tiny_fake_releases(tmp_path):
  run = readme_test.commands_run_by(readme_test.PAPER)
  assert len(run) == 5, run  # build K400, build SSv2, (a), (b), (c)
  imagenet = tmp_path / 'swin_tiny_patch4_window7_224.pth'
  _imagenet_swin_file(str(imagenet), None)
  substitutions = {
      '/data/k400': k400_release(tmp_path / 'k400', label_folders=True),
      '/data/ssv2': ssv2_release(tmp_path / 'ssv2'),
      '$TFDS': str(tmp_path / 'tfds'),
      'workdir/': f'{tmp_path}/workdir/',
      'swin_tiny_patch4_window7_224.pth': str(imagenet),
  }
  for command in run:
    argv = shlex.split(command)
    _run(argv, substitutions, *(TINY if argv[1] == 'main.py' else ()))
  k400, ssv2 = tmp_path / 'workdir' / 'k400_tps_t', tmp_path / 'workdir' / 'ssv2_tps_t'
  assert _json(k400 / 'init.json')['kind'] == 'imagenet'  # (a): inflated on load
  init = _json(ssv2 / 'init.json')                        # (b): from the K400 run
  assert init['kind'] == 'workdir' and init['step'] == 2, init
  assert _json(ssv2 / 'evaluate' / 'eval_validation.json')['count'] == 1  # (c)
