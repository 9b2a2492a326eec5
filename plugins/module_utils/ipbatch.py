# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running iproute2 commands from Python: one command's result, a runner with one process per
command, and a persistent ``ip -force -batch -`` co-process for many small commands.

The Mobile IPv6 daemon (``mvpn_lab.mip6``, which carries this file in its bundle) sends its
data-plane commands through :class:`IpBatchRunner`; modules run one batch with :func:`run_batch`.

Under the twin's emulated CPU every fork and exec of ``ip`` costs about 80 ms, and a handover
needs a dozen commands on the mobile node and the home agent. One long-lived ``ip`` per option
set takes the commands on stdin instead, so a command costs one netlink round trip.

Per-command results come from stderr, which ``ip`` does not buffer: after each command the
runner sends a sentinel command that always fails (deleting a route from routing table 252,
which nothing uses: "FIB table does not exist"). ``ip`` reports every failed batch line as
``Command failed -:<line>``, so the lines read before the command's own report hold its error.
(A device name that does not exist would do too, but the kernel then asks modprobe for a
``netdev-NAME`` module: 0.2 s per command on the twin.) ``ip`` exits on some argument
errors; the runner then reports the command as failed and starts a new co-process next time.

Only commands that print nothing on success take this path (``add``, ``del``, ``replace`` ...);
listings, JSON output and anything that is not ``ip`` go to the fallback runner.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import contextlib
import os
import re
import select
import signal
import subprocess
import time


class CommandResult(collections.namedtuple("CommandResult", ["returncode", "stdout", "stderr"])):
    """What one command did: exit status, standard output and standard error (text)."""

    __slots__ = ()

    def __new__(cls, returncode, stdout="", stderr=""):
        return super(CommandResult, cls).__new__(cls, returncode, stdout, stderr)

    @property
    def ok(self):
        return self.returncode == 0

    @property
    def message(self):
        """The first non-empty line of stderr (else stdout), for one-line errors."""
        for text in (self.stderr, self.stdout):
            for line in text.splitlines():
                if line.strip():
                    return line.strip()
        return "exit status %d" % self.returncode


class SubprocessRunner:
    """Runs commands for real, ``timeout`` seconds each: ``runner(argv)`` gives a CommandResult."""

    def __init__(self, timeout=10.0):
        self.timeout = timeout

    def __call__(self, argv):
        try:
            done = subprocess.run(
                list(argv), capture_output=True, text=True, timeout=self.timeout, check=False
            )
        except FileNotFoundError:
            return CommandResult(127, "", "%s: command not found" % argv[0])
        except subprocess.TimeoutExpired:
            return CommandResult(124, "", "timed out after %g s" % self.timeout)
        except OSError as exc:
            return CommandResult(126, "", "%s: %s" % (argv[0], exc.strerror or exc))
        return CommandResult(done.returncode, done.stdout, done.stderr)


def batch_text(lines):
    """``ip -batch`` input for ``lines`` (each a list of words)."""
    return "\n".join(" ".join(words) for words in lines) + "\n"


def run_batch(run_command, lines, options=("-6",)):
    """Run ``ip OPTIONS -batch -`` once with ``lines`` on stdin (so arguments such as key material
    never show in a process list). ``run_command`` is ``AnsibleModule.run_command``; returns its
    ``(rc, out, err)``."""
    return run_command(["ip"] + list(options) + ["-batch", "-"], data=batch_text(lines), binary_data=True)


#: Options a batch line may not carry (``ip`` parses them once, for the whole process). Not
#: ``-4``: the sentinel is an IPv6 route, which ``ip -4`` rejects by exiting.
BATCH_OPTIONS = frozenset({"-6"})
#: Words that make ``ip`` print to stdout, which it buffers: such commands run on their own.
_OUTPUT_WORDS = frozenset({"show", "list", "lst", "get", "monitor", "save", "-j", "-json"})
_SENTINEL = "route del ::/128 table 252"  # fails at once; the table does not exist
_FAILED = re.compile(r"^Command failed -:(\d+)$")
_UNSAFE = re.compile(r"[\s\"'#\\]")
_DEVICE_CHANGE = re.compile(r"^(tunnel|tun|link|tuntap) (add|del|delete)\b")


class IpBatchRunner:
    """A command runner that sends mutating ``ip`` commands to long-lived ``ip -batch``."""

    def __init__(self, fallback, timeout=10.0, ip=("ip",)):
        self.fallback = fallback
        self.timeout = timeout
        self.ip = list(ip)  # e.g. ("unshare", "--net", "ip") in tests
        self._procs = {}
        self.batched = 0
        self.restarts = 0
        self.recycled = 0

    def __call__(self, argv):
        split = batch_line(argv)
        if split is None:
            return self.fallback(argv)
        options, line = split
        proc = self._procs.get(options)
        if proc is None or not proc.alive():
            if proc is not None:
                self.restarts += 1
            proc = self._start(options)
            if proc is None:
                return self.fallback(argv)
        self.batched += 1
        result = proc.run(line, self.timeout)
        if _DEVICE_CHANGE.match(line):
            # ip caches interface name -> index: after a device is created or deleted a cached
            # index can be stale ("No such device" for a re-created name), so start afresh, at
            # once: a new ip costs 60-80 ms on the twin, which the next command (a home agent's
            # BA after DAD, say) would otherwise wait for
            self.recycled += 1
            self.close()
            self._start(options)
        return result

    def _start(self, options):
        try:
            proc = _BatchProcess(self.ip + list(options) + ["-force", "-batch", "-"])
        except OSError:
            return None
        self._procs[options] = proc
        return proc

    def close(self):
        for proc in self._procs.values():
            proc.close()
        self._procs.clear()


def batch_line(argv):
    """``(options, line)`` for a command the batch can take, else None."""
    if len(argv) < 3 or os.path.basename(argv[0]) != "ip":
        return None
    rest = list(argv[1:])
    options = []
    while rest and rest[0].startswith("-"):
        options.append(rest.pop(0))
    if not rest or any(opt not in BATCH_OPTIONS for opt in options):
        return None
    if any(word in _OUTPUT_WORDS for word in rest) or any(_UNSAFE.search(word) or not word for word in rest):
        return None
    return tuple(sorted(options)), " ".join(rest)


def _ignore_stop_signals():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _BatchProcess:
    def __init__(self, argv):
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            close_fds=True,
            # systemd signals the whole unit at stop: the co-process must outlive the daemon's
            # SIGTERM so teardown commands still run; it ends when the daemon closes its stdin
            preexec_fn=_ignore_stop_signals,
        )
        self.stdin = self.proc.stdin
        self.stderr_fd = self.proc.stderr.fileno()
        os.set_blocking(self.stderr_fd, False)
        self.lineno = 0
        self.buffer = b""

    def alive(self):
        return self.proc.poll() is None

    def run(self, line, timeout):
        command_no, sentinel_no = self.lineno + 1, self.lineno + 2
        self.lineno += 2
        try:
            self.stdin.write(("%s\n%s\n" % (line, _SENTINEL)).encode())
            self.stdin.flush()
        except (BrokenPipeError, OSError):
            self.close()
            return CommandResult(1, "", "ip batch co-process exited")
        messages = []
        errors = None  # the command's own error lines, once it is reported failed
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\n", 1)
                text = raw.decode(errors="replace")
                match = _FAILED.match(text)
                if match is None:
                    messages.append(text)
                    continue
                number = int(match.group(1))
                if number == sentinel_no:  # the sentinel's own error lines are dropped
                    if errors is None:
                        return CommandResult(0, "", "")
                    return CommandResult(1, "", "\n".join(errors))
                if number == command_no:
                    errors = messages
                messages = []
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                return CommandResult(124, "", "timed out after %g s" % timeout)
            ready = select.select([self.stderr_fd], [], [], left)[0]
            if not ready:
                continue
            chunk = os.read(self.stderr_fd, 65536)
            if not chunk:  # ip exited (it does on some argument errors)
                self.close()
                text = "\n".join([*messages, self.buffer.decode(errors="replace")]).strip()
                return CommandResult(1, "", text or "ip batch co-process exited")
            self.buffer += chunk

    def close(self):
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.stdin.close()
            try:
                self.proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
