"""Fetch Debian packages that ship data (images), unpacked into a folder: nothing is installed.

``apt-get download`` fetches the ``.deb`` into the cache folder (after ``apt-get update``
when the package lists are empty), then ``dpkg-deb --fsys-tarfile | tar -x`` unpacks the
members that match the given patterns (the same as ``dpkg -x`` restricted to those
files: Tux Paint's stamp package is 230 MB unpacked, 200 MB of it sound files the
benchmark does not need). A finished unpack is marked by a ``.complete`` file, so a
second call costs nothing.
"""
import glob
import os
import os.path as osp
import shutil
import subprocess
from typing import Callable, Optional, Sequence


class PackageFetchError(RuntimeError):
    """A package could not be fetched; the message says how to provide it by hand."""


def _how_to(names: Sequence[str], dest: str) -> str:
    names = ' '.join(names)
    return (f'on a Debian/Ubuntu machine: `apt-get update && apt-get download {names}`, '
            f'then `dpkg -x <file>.deb {dest}/<package>` for each .deb (nothing needs '
            f'installing); or, where the packages are installed, point the generator at '
            f'/usr/share (--stamp-root /usr/share/tuxpaint/stamps, --background-root /)')


def _lists_empty() -> bool:
    return not glob.glob('/var/lib/apt/lists/*_Packages*')


def _apt_download(name: str, deb_dir: str, logger: Callable) -> str:
    def download():
        return subprocess.run(['apt-get', 'download', name], cwd=deb_dir,
                              capture_output=True, text=True)

    proc = download()
    if proc.returncode != 0 and _lists_empty():
        logger('apt package lists are empty: running apt-get update')
        upd = subprocess.run(['apt-get', 'update'], capture_output=True, text=True)
        if upd.returncode != 0:
            raise PackageFetchError(f'apt-get update failed ({upd.stderr.strip()[-300:]}); '
                                    + _how_to([name], deb_dir))
        proc = download()
    if proc.returncode != 0:
        raise PackageFetchError(f'apt-get download {name} failed '
                                f'({proc.stderr.strip()[-300:]}); ' + _how_to([name], deb_dir))
    debs = sorted(glob.glob(osp.join(deb_dir, f'{name}_*.deb')))
    if not debs:
        raise PackageFetchError(f'apt-get download {name} wrote no {name}_*.deb in {deb_dir}')
    return debs[-1]


def fetch_debian_package(name: str, cache_dir: str, patterns: Optional[Sequence[str]] = None,
                         logger: Optional[Callable[[str], None]] = None) -> str:
    """Unpack package ``name`` under ``cache_dir/<name>/`` and return that folder.

    Args:
        name: Debian package name.
        cache_dir: ``debs/`` (downloads) and one folder per package go here.
        patterns: ``tar --wildcards`` patterns of the members to unpack (paths as in the
            package, e.g. ``'./usr/share/tuxpaint/stamps/animals/*.png'``); None: all.
        logger: progress messages.

    Raises:
        PackageFetchError: apt is missing or fails; the message says what to do instead.
    """
    logger = logger or (lambda msg: None)
    root = osp.join(cache_dir, name)
    if osp.isfile(osp.join(root, '.complete')):
        return root
    if shutil.which('apt-get') is None or shutil.which('dpkg-deb') is None:
        raise PackageFetchError(f'apt-get / dpkg-deb not found, so {name} cannot be fetched '
                                f'here; ' + _how_to([name], cache_dir))
    deb_dir = osp.join(cache_dir, 'debs')
    os.makedirs(deb_dir, exist_ok=True)
    debs = sorted(glob.glob(osp.join(deb_dir, f'{name}_*.deb')))
    deb = debs[-1] if debs else _apt_download(name, deb_dir, logger)
    logger(f'unpacking {osp.basename(deb)} ({osp.getsize(deb) / 1e6:.0f} MB) into {root}')
    if osp.isdir(root):
        shutil.rmtree(root)
    os.makedirs(root)
    dpkg = subprocess.Popen(['dpkg-deb', '--fsys-tarfile', deb], stdout=subprocess.PIPE)
    tar = subprocess.run(['tar', '-x', '-C', root, '--wildcards', *(patterns or [])],
                         stdin=dpkg.stdout, capture_output=True, text=True)
    dpkg.stdout.close()
    if dpkg.wait() != 0 or tar.returncode != 0:
        raise PackageFetchError(f'unpacking {deb} failed: {tar.stderr.strip()[-300:]}')
    with open(osp.join(root, '.complete'), 'w') as f:
        f.write(osp.basename(deb) + '\n')
    return root
