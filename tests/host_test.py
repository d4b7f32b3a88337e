"""tps_jax.host: the huge-page malloc re-exec every entry point does first."""
import os
import platform
import subprocess
import sys

import pytest

from tps_jax import host

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('mode', ['always', 'madvise'])
def test_sets_the_tunable_where_the_kernel_has_thp(mode):
  assert host.huge_page_env({'A': '1'}, mode) == {'A': '1', 'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=1'}


def test_keeps_the_users_own_tunables():
  env = host.huge_page_env({'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2'}, 'madvise')
  assert env['GLIBC_TUNABLES'] == 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1'


@pytest.mark.parametrize('environ,mode', [
    ({}, 'never'),                                            # THP off: nothing to gain
    ({}, None),                                               # unknown (no sysfs)
    ({'TPS_JAX_HUGEPAGES': '0'}, 'madvise'),                  # opted out
    ({'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=0'}, 'always'),  # the user's own choice
    ({'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=1'}, 'always'),  # already re-executed
])
def test_no_reexec(environ, mode):
  assert host.huge_page_env(environ, mode) is None


def test_thp_mode_reads_the_bracketed_word(tmp_path, monkeypatch):
  f = tmp_path / 'enabled'
  f.write_text('always [madvise] never\n')
  monkeypatch.setattr(host, '_THP', str(f))
  assert host.thp_mode() == 'madvise'
  monkeypatch.setattr(host, '_THP', str(tmp_path / 'missing'))
  assert host.thp_mode() is None


@pytest.mark.skipif(sys.platform != 'linux' or platform.libc_ver()[0] != 'glibc'
                    or host.thp_mode() not in ('always', 'madvise'),
                    reason='needs glibc Linux with transparent huge pages')
def test_reexecutes_once_with_the_same_pid_and_argv():
  script = ('import os, sys; print("start", os.getpid(), sys.argv[1:], flush=True); '
            'from tps_jax import host; host.use_huge_pages(); '
            'print("tunables", os.environ.get("GLIBC_TUNABLES"))')
  env = {k: v for k, v in os.environ.items() if k not in ('GLIBC_TUNABLES', host.OPT_OUT)}
  out = subprocess.run([sys.executable, '-c', script, 'x', '--y=1'], cwd=ROOT, env=env,
                       capture_output=True, text=True, check=True, timeout=60).stdout.splitlines()
  starts = [line for line in out if line.startswith('start')]
  assert len(starts) == 2 and starts[0] == starts[1], out  # ran twice: same pid, same argv
  assert "['x', '--y=1']" in starts[0]
  assert out[-1] == 'tunables glibc.malloc.hugetlb=1'
