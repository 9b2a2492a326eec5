# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Background processes that outlive the module run that started them, and their state files.

:func:`spawn_detached` starts a program fully detached: a double fork, so the program is not a
child of the module (nothing waits for it, nothing is left to reap), in a new session, with
stdin from /dev/null, stdout and stderr to files and no other inherited descriptor, so the SSH
session of Ansible returns at once. A later module run finds the process again by pid *and* the
start time the kernel recorded for it (field 22 of ``/proc/PID/stat``), so a reused pid is never
taken for the program. A zombie counts as exited.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import json
import os
import signal
import time

POLL = 0.05


class SpawnError(Exception):
    """The program could not be started (the message is the reason, for example exec's error)."""


def _read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _stat_fields(pid):
    """Fields 3.. of /proc/PID/stat (after the command name), or None when there is no such process."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            data = fh.read().decode("ascii", "replace")
    except (IOError, OSError):
        return None
    return data.rpartition(")")[2].split()


def start_time(pid):
    """The process's start time in clock ticks after boot (field 22 of /proc/PID/stat), or None."""
    fields = _stat_fields(pid)
    if not fields or len(fields) < 20:
        return None
    return int(fields[19])


def is_running(pid, started=None):
    """True when pid is a live (not zombie) process whose start time is started (when given)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            return False
    fields = _stat_fields(pid)
    if fields is None:
        return False
    if fields[0] in ("Z", "X", "x"):
        return False
    return started is None or (len(fields) >= 20 and int(fields[19]) == started)


def wait_exit(pid, started, timeout):
    """Poll until the process has exited; True when it did within timeout seconds."""
    deadline = time.time() + timeout
    while is_running(pid, started):
        if time.time() >= deadline:
            return False
        time.sleep(POLL)
    return True


def stop(pid, started, sig, timeout, kill_after=5.0):
    """Send sig, wait up to timeout s, then SIGKILL (and wait kill_after s more).

    Returns "gone" (the process was not running), "stopped" (it exited after sig) or "killed".
    The process is checked by pid and start time before every signal.
    """
    if not is_running(pid, started):
        return "gone"
    try:
        os.kill(pid, sig)
    except OSError:
        return "gone"
    if wait_exit(pid, started, timeout):
        return "stopped"
    if is_running(pid, started):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        wait_exit(pid, started, kill_after)
    return "killed"


def _close_fds(keep):
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = range(3, 1024)
    for fd in fds:
        if fd > 2 and fd != keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def spawn_detached(argv, stdout_path, stderr_path, cwd="/"):
    """Start argv detached; returns (pid, start time). Raises SpawnError when it cannot be started.

    stdout and stderr are truncated; they may be the same file.
    """
    devnull = os.open(os.devnull, os.O_RDONLY)
    out = err = None
    try:
        out = os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        if stderr_path == stdout_path:
            err = os.dup(out)
        else:
            err = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as exc:
        for fd in (devnull, out):
            if fd is not None:
                os.close(fd)
        raise SpawnError("cannot open %s: %s" % (exc.filename, exc.strerror)) from None
    info_r, info_w = os.pipe()  # the intermediate child reports "pid start" of the program
    exec_r, exec_w = os.pipe()  # close-on-exec: EOF once exec succeeded, else exec's error
    child = os.fork()
    if child == 0:  # intermediate child: new session, fork the program, report, exit
        status = 1
        try:
            os.close(info_r)
            os.close(exec_r)
            os.setsid()
            program = os.fork()
            if program == 0:  # the program
                try:
                    for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGXFSZ):
                        signal.signal(sig, signal.SIG_DFL)
                    signal.pthread_sigmask(signal.SIG_SETMASK, [])
                    os.chdir(cwd)
                    os.dup2(devnull, 0)
                    os.dup2(out, 1)
                    os.dup2(err, 2)
                    _close_fds(exec_w)
                    os.execvp(argv[0], argv)
                except BaseException as exc:  # the forked program must never return to the caller's code
                    try:
                        reason = getattr(exc, "strerror", None) or exc
                        os.write(exec_w, ("%s: %s" % (argv[0], reason)).encode("utf-8", "replace"))
                    finally:
                        os._exit(127)
            os.write(info_w, ("%d %s" % (program, start_time(program))).encode("ascii"))
            status = 0
        finally:
            os._exit(status)
    for fd in (info_w, exec_w, devnull, out, err):
        os.close(fd)
    os.waitpid(child, 0)
    info = _read_all(info_r).decode("ascii").split()
    os.close(info_r)
    failure = _read_all(exec_r).decode("utf-8", "replace")
    os.close(exec_r)
    if failure:
        raise SpawnError(failure)
    if len(info) != 2:
        raise SpawnError("the helper process that starts %s failed" % argv[0])
    return int(info[0]), (None if info[1] == "None" else int(info[1]))


def read_json(path):
    with open(path) as fh:
        return json.load(fh)


def write_json(path, data):
    """Write data as JSON, atomically (a temporary file renamed over path)."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.rename(tmp, path)
