"""The apps' one flag pattern: flags live in the apps only; a bad flag is one line in each."""
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

ENV = dict(os.environ, JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='3')

_IMPORT_LIBRARY = """
import importlib, pkgutil, sys
from absl import flags
import input_pipeline, tps_jax
names = [m.name for p in (tps_jax, input_pipeline)
         for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')
         if not m.name.startswith('tps_jax.apps')]
for name in names:
  importlib.import_module(name)
print(len(names), sorted(set(flags.FLAGS) & set(sys.argv[1:])))
"""


@pytest.mark.slow
def test_no_library_module_defines_an_app_flag():
  app_flags = ['config', 'workdir', 'checkpoint', 'data_dir', 'manual_dir', 'dataset',
               'builder_config', 'video', 'labels', 'output', 'batch', 'json', 'imagenet']
  result = subprocess.run([sys.executable, '-c', _IMPORT_LIBRARY, *app_flags], cwd=ROOT,
                          env=ENV, capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  count, defined = result.stdout.split(' ', 1)
  assert int(count) > 30 and defined.strip() == '[]', result.stdout


@pytest.mark.slow
@pytest.mark.parametrize('app', ['predict', 'profile', 'convert'])
def test_a_misspelled_config_field_is_one_line_naming_it(app):
  result = subprocess.run(
      [sys.executable, '-m', f'tps_jax.apps.{app}', '--config=configs/test.py',
       '--config.model.embed_dimm=8', '--checkpoint=x', '--output=y'],
      cwd=ROOT, env=ENV, capture_output=True, text=True, check=False)
  assert result.returncode == 1 and 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith(
      f"{app}: bad flag: no such config field 'embed_dimm'"), result.stderr[-2000:]
