"""tps_jax.host: huge-page malloc (a re-exec) and XLA's memory-minimizing scheduler."""
import os
import subprocess
import sys

import pytest

from tps_jax import host

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAG = '--xla_cpu_enable_concurrency_optimized_scheduler=false'


@pytest.mark.parametrize('mode', ['always', 'madvise'])
def test_sets_both_where_the_kernel_has_thp(mode):
  assert host.tuned_env({'A': '1'}, mode) == {
      'A': '1', 'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=1', 'XLA_FLAGS': FLAG}


def test_keeps_the_users_own_settings():
  env = host.tuned_env({'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2',
                        'XLA_FLAGS': '--xla_force_host_platform_device_count=8'}, 'madvise')
  assert env['GLIBC_TUNABLES'] == 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1'
  assert env['XLA_FLAGS'] == '--xla_force_host_platform_device_count=8 ' + FLAG
  chosen = {'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=0',
            'XLA_FLAGS': '--xla_cpu_enable_concurrency_optimized_scheduler=true'}
  assert host.tuned_env(chosen, 'always') == chosen


@pytest.mark.parametrize('mode', ['never', None])  # THP off, or unknown (no sysfs)
def test_no_tunable_without_thp(mode):
  assert host.tuned_env({}, mode) == {'XLA_FLAGS': FLAG}


def test_opt_out():
  assert host.tuned_env({'TPS_JAX_TUNE_HOST': '0'}, 'always') == {'TPS_JAX_TUNE_HOST': '0'}


def test_thp_mode_reads_the_bracketed_word(tmp_path, monkeypatch):
  f = tmp_path / 'enabled'
  f.write_text('always [madvise] never\n')
  monkeypatch.setattr(host, '_THP', str(f))
  assert host.thp_mode() == 'madvise'
  monkeypatch.setattr(host, '_THP', str(tmp_path / 'missing'))
  assert host.thp_mode() is None


def _run(script, env, tmp_path, how='file'):
  """Runs ``script`` as a file (re-runnable), with ``-c`` or from stdin; its stdout lines."""
  path = tmp_path / 'script.py'
  path.write_text(script)
  argv = {'file': [str(path)], '-c': ['-c', script], 'stdin': ['-']}[how]
  return subprocess.run([sys.executable, *argv, 'x', '--y=1'], cwd=ROOT, env=env,
                        input=script if how == 'stdin' else None, capture_output=True,
                        text=True, check=True, timeout=60).stdout.splitlines()


def _untuned_env():
  return {k: v for k, v in os.environ.items()
          if k not in ('GLIBC_TUNABLES', 'XLA_FLAGS', host.OPT_OUT)}


SCRIPT = ('import os, sys; sys.path.insert(0, os.getcwd()); '
          'print("start", os.getpid(), sys.argv[1:], flush=True); '
          'from tps_jax import host; host.configure(); '
          'print("env", os.environ.get("GLIBC_TUNABLES"), os.environ.get("XLA_FLAGS"))')
THP = pytest.mark.skipif(not host.glibc_linux() or host.thp_mode() not in ('always', 'madvise'),
                         reason='needs glibc Linux with transparent huge pages')


@THP
def test_reexecutes_a_script_once_with_the_same_pid_and_argv(tmp_path):
  out = _run(SCRIPT, _untuned_env(), tmp_path)
  starts = [line for line in out if line.startswith('start')]
  assert len(starts) == 2 and starts[0] == starts[1], out  # ran twice: same pid, same argv
  assert "['x', '--y=1']" in starts[0]
  assert out[-1] == f'env glibc.malloc.hugetlb=1 {FLAG}'


@THP
@pytest.mark.parametrize('how', ['-c', 'stdin'])
def test_code_from_stdin_or_c_runs_once_with_the_xla_flag_alone(tmp_path, how):
  out = _run(SCRIPT, _untuned_env(), tmp_path, how)
  assert len([line for line in out if line.startswith('start')]) == 1, out
  assert out[-1] == f'env None {FLAG}'


@THP
def test_a_notebook_kernel_is_not_restarted(tmp_path):
  fake_kernel = 'import sys, types; sys.modules["IPython"] = types.ModuleType("IPython")\n'
  out = _run(fake_kernel + SCRIPT, _untuned_env(), tmp_path)
  assert len([line for line in out if line.startswith('start')]) == 1, out
  assert out[-1] == f'env None {FLAG}'


def test_no_reexec_when_the_tunable_is_set(tmp_path):
  env = dict(_untuned_env(), GLIBC_TUNABLES='glibc.malloc.hugetlb=1')
  out = _run(SCRIPT, env, tmp_path)
  assert len([line for line in out if line.startswith('start')]) == 1, out
  assert out[-1] == f'env glibc.malloc.hugetlb=1 {FLAG}'  # the XLA flag, set in place


def test_release_free_memory_runs():
  host.release_free_memory()  # malloc_trim(0) on glibc, a no-op elsewhere
