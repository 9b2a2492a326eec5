# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of mvpn.lab.capture: runs the module, then with ``fetch_to`` copies the capture
to the controller, checks its sha256 against the module's and moves it into place without ever
overwriting a file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import errno
import os
import shutil
import tempfile

from ansible.plugins.action import ActionBase
from ansible_collections.mvpn.lab.plugins.module_utils.checksum import file_sha256

MODULE = "mvpn.lab.capture"


class PlaceError(Exception):
    """The capture cannot be put at its destination; the message is the task's one-line error."""


def _existing(dest, sha256):
    """The result for a destination that exists already: unchanged if it is the same capture."""
    if not os.path.isfile(dest) or file_sha256(dest) != sha256:
        raise PlaceError("fetch_to: %s exists with other content; captures are never overwritten" % dest)
    return dict(changed=False, fetched=False, dest=dest)


def _link_or_copy(tmp, dest):
    """Create dest with tmp's content; FileExistsError when dest exists (never overwritten)."""
    try:
        os.link(tmp, dest)
        return
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise
    # A file system without hard links: create dest exclusively, then copy.
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as out, open(tmp, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
    except BaseException:
        os.unlink(dest)
        raise


def place_capture(dest, sha256, fetch):
    """Put a copy of the capture at dest, never over an existing file.

    fetch(local_path) writes the remote capture to local_path (a temporary file beside dest). The
    copy must have sha256 (the module's). Returns dict(changed, fetched, dest); raises PlaceError.
    """
    if not sha256:
        raise PlaceError("fetch_to: the module reported no sha256 for the capture, nothing to fetch")
    if os.path.lexists(dest):
        return _existing(dest, sha256)
    folder = os.path.dirname(dest) or "."
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise PlaceError("fetch_to: cannot create folder %s: %s" % (folder, exc.strerror)) from None
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".%s." % os.path.basename(dest), suffix=".part")
    os.close(fd)
    try:
        fetch(tmp)
        got = file_sha256(tmp)
        if got != sha256:
            raise PlaceError(
                "fetch_to: the copy fetched for %s has sha256 %s, the host reported %s" % (dest, got, sha256)
            )
        os.chmod(tmp, 0o644)
        try:
            _link_or_copy(tmp, dest)
        except FileExistsError:  # it appeared while we fetched
            return _existing(dest, sha256)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return dict(changed=True, fetched=True, dest=dest)


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        fetch_to = args.pop("fetch_to", None)
        try:
            if fetch_to and args.get("state") != "stopped":
                result.update(failed=True, msg="fetch_to: only valid with state=stopped")
                return result
            result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
            if result.get("failed") or not fetch_to:
                return result
            dest = self._loader.path_dwim(fetch_to)
            if self._task.check_mode:
                result.update(dest=dest, fetched=False)
                return result
            try:
                placed = place_capture(
                    dest, result.get("sha256"), lambda local: self._fetch(result["path"], local, task_vars)
                )
            except PlaceError as exc:
                result.update(failed=True, msg=str(exc), dest=dest, fetched=False)
                return result
            result.update(dest=placed["dest"], fetched=placed["fetched"])
            result["changed"] = bool(result.get("changed")) or placed["changed"]
            return result
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    def _fetch(self, remote, local, task_vars):
        """Copy the remote file to local: the connection's fetch_file, or slurp with become."""
        if not getattr(self._connection, "become", None):
            self._connection.fetch_file(remote, local)
            return
        # With privilege escalation the connection user may not be able to read the capture.
        slurp = self._execute_module(
            module_name="ansible.legacy.slurp", module_args=dict(src=remote), task_vars=task_vars
        )
        if slurp.get("failed"):
            raise PlaceError("fetch_to: cannot read %s on the host: %s" % (remote, slurp.get("msg", "")))
        with open(local, "wb") as fh:
            fh.write(base64.b64decode(slurp["content"]))
