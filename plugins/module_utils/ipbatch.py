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
``netdev-NAME`` module: 0.2 s per command on the twin.) ``ip`` exits on any failed ``ip xfrm``
request and on some argument errors; the runner then reports the command as failed and starts a
new co-process. :meth:`IpBatchRunner.run_many` writes several commands, each with its sentinel,
at once: the daemon's commands before a handover's message cost one write and one wake-up.

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
        return self.run_many([argv])[0]

    def run_many(self, argvs):
        """The results of ``argvs``, in order, as if each had been run on its own (``-force``: a
        failed command does not stop the ones after it).

        Consecutive commands that go to the same co-process are written to it at once, each
        followed by a sentinel, and their results are read from ``ip``'s numbered failure
        reports: n commands cost one write and one read instead of n of each. A command that
        creates or deletes a device ends its group; commands the batch cannot take run on their
        own, in their place; when ip exits on a line, the lines after it go to a new co-process."""
        results = [None] * len(argvs)
        group, group_options = [], None

        def run_group():
            if not group:
                return
            pending = list(group)
            while pending:
                proc = self._live(group_options)
                if proc is None:
                    for index, _line in pending:
                        results[index] = self.fallback(argvs[index])
                    break
                self.batched += len(pending)
                done = proc.run_lines([line for _index, line in pending], self.timeout)
                for (index, _line), result in zip(pending, done):  # noqa: B905 (Python 2 syntax)
                    results[index] = result
                # lines after one that made ip exit never ran: a new co-process runs them
                pending = [item for item, result in zip(pending, done) if result is None]  # noqa: B905
            if _DEVICE_CHANGE.match(group[-1][1]):
                # ip caches interface name -> index: after a device is created or deleted a
                # cached index can be stale ("No such device" for a re-created name), so start
                # afresh, at once: a new ip costs 60-80 ms on the twin, which the next command
                # (a home agent's BA after DAD, say) would otherwise wait for
                self.recycled += 1
                self.close()
                self._start(group_options)
            del group[:]

        for index, argv in enumerate(argvs):
            split = batch_line(argv)
            if split is None:
                run_group()
                results[index] = self.fallback(argv)
                continue
            options, line = split
            if options != group_options:
                run_group()
                group_options = options
            group.append((index, line))
            if _DEVICE_CHANGE.match(line):
                run_group()
        run_group()
        return results

    def _live(self, options):
        """The running co-process for ``options``, started (a restart if one had exited) when
        there is none; None when ip cannot be started."""
        proc = self._procs.get(options)
        if proc is not None and proc.alive():
            return proc
        if proc is not None:
            self.restarts += 1
        return self._start(options)

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

    def run_lines(self, lines, timeout):
        """One result per line of ``lines``, all written at once, each followed by a sentinel;
        None for a line that never ran.

        A line's result is complete when its sentinel's report arrives: an error when its own
        line was reported (``Command failed -:N``, with the stderr lines before it), else success.
        ``ip`` exits on some errors (any failed ``ip xfrm`` request, some argument errors): the
        first line whose sentinel was not reported then gets what ip said last, and the lines
        after it never ran (None: the runner gives them to a new co-process). A timeout is that
        line's failure too."""
        base = self.lineno  # line k (from 0) is base + 2k + 1, its sentinel base + 2k + 2
        self.lineno = base + 2 * len(lines)
        results = [None] * len(lines)
        try:
            self.stdin.write("".join("%s\n%s\n" % (line, _SENTINEL) for line in lines).encode())
            self.stdin.flush()
        except (BrokenPipeError, OSError):
            self.close()
            results[0] = CommandResult(1, "", "ip batch co-process exited")
            return results
        messages = []
        errors = None  # the current line's error lines, once it is reported failed
        done = 0  # lines whose sentinel was reported
        deadline = time.monotonic() + timeout
        while done < len(lines):
            while b"\n" in self.buffer and done < len(lines):
                raw, self.buffer = self.buffer.split(b"\n", 1)
                text = raw.decode(errors="replace")
                match = _FAILED.match(text)
                if match is None:
                    messages.append(text)
                    continue
                number = int(match.group(1))
                if number == base + 2 * done + 2:  # the sentinel's own error lines are dropped
                    results[done] = (
                        CommandResult(0, "", "")
                        if errors is None
                        else CommandResult(1, "", "\n".join(errors))
                    )
                    done += 1
                    errors = None
                elif number == base + 2 * done + 1:
                    errors = messages
                messages = []
            if done == len(lines):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                results[done] = CommandResult(124, "", "timed out after %g s" % timeout)
                break
            ready = select.select([self.stderr_fd], [], [], left)[0]
            if not ready:
                continue
            chunk = os.read(self.stderr_fd, 65536)
            if not chunk:  # ip exited
                self.close()
                text = "\n".join((errors or []) + messages + [self.buffer.decode(errors="replace")]).strip()
                results[done] = CommandResult(1, "", text or "ip batch co-process exited")
                break
            self.buffer += chunk
        return results

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
