# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run folder's contract: its layout and the schema of manifest.json, events.json,
outcome.json and handovers.json. The one owner: the ``run_folder`` module writes through it, the
experiment runner (``mvpn-lab run``) and the analyser (``mvpn-lab analyze``) read through it
(the package imports it as ``ansible_collections.mvpn.lab.plugins.module_utils.runfolder``).

Layout::

    <base>/<test>/<UTC>/            the run folder (a suffix -2, -3... when the name is taken)
      manifest.json                 the run: test, plan, versions, addresses, checksums
      <config>/rep-NN/              one repetition (NN from 01)
        mn.pcap, cn.pcap            the captures
        events.json                 what happened, written last: the repetition is complete
      outcome.json                  passed or not, per repetition (handover tests)
      <config>/lab/<host>/          every host's rendered configuration and kernel state while
                                    the configuration ran (mvpn.lab.lab_config, no key); lab-2...
                                    when a resumed run found them changed
      daemon/<node>.jsonl           the Mobile IPv6 daemons' event logs, fetched at the end
                                    (their "answer" lines: processing times, read_answers)
      summary.json, handover.csv,   the analyser's results
      handovers.json

Every file this module writes has ``schema_version`` (:data:`SCHEMA_VERSION`). A file without it
was written before the schema existed (version 0): it is still read, with a note, and brought to
the current shape (booleans written by templates as strings become booleans; a handover's
``direction`` comes from its SSID). The module's ``mvpn_run_step`` result key
(:data:`STEP_KEY`) tells a reader of Ansible's events which step of a run a result is.

Plain Python (3.8+), no Ansible imports. Errors are one line naming the file and the field.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import os
import re
import stat

from ansible_collections.mvpn.lab.plugins.module_utils.repetition import one_line, truthy, verdict

SCHEMA_VERSION = 1

MANIFEST = "manifest.json"
EVENTS = "events.json"
OUTCOME = "outcome.json"
HANDOVERS = "handovers.json"
DAEMON_LOGS = "daemon"
#: a configuration's rendered lab configuration: ``<config>/lab/<host>/<file>``
LAB_CONFIGS = "lab"
#: the daemon's event that times each Mobility Header message it sent, and its fields
ANSWER_EVENT = "answer"
ANSWER_FIELDS = {
    "role": "str",
    "epoch": "number",
    "message": "str",
    "dst": "str",
    "trigger": "str",
    "processing_ms": "number",
    "kernel_ms": "number",
    "kernel_commands": "int",
}
#: fields an answer line may carry (the MN's first BU after a link-up); one of the wrong kind is
#: left out, the answer kept
ANSWER_OPTIONAL = {"since_link_up_ms": "number"}

#: the result key of mvpn.lab.run_folder naming the step of the run; its values
STEP_KEY = "mvpn_run_step"
STEP_CREATED = "created"  # a new run folder (result: path, manifest)
STEP_RESUMED = "resumed"  # an interrupted one reopened (path, manifest, done, set_aside)
STEP_OPENED = "opened"  # a repetition begins (name, path)
STEP_RECORDED = "recorded"  # a repetition is complete (name, path, events, outcome)
STEP_FINISHED = "finished"  # the summary or outcome.json written (path, summary, files)
STEP_JUDGED = "judged"  # the run's verdict from outcome.json (fails when a repetition failed)
STEP_CONFIGURED = "configured"  # a configuration's rendered lab configuration kept (path, lab_dir)
STEPS = (STEP_CREATED, STEP_RESUMED, STEP_OPENED, STEP_RECORDED, STEP_FINISHED, STEP_JUDGED, STEP_CONFIGURED)

DIRECTIONS = ("away", "home")
#: Run folders of schema 0 did not record a handover's direction: the playbooks of that time
#: named the home network LOCAL. Used only to read such a folder, with a note.
LEGACY_HOME_SSID = "LOCAL"

REP_DIR = re.compile(r"^rep-(\d+)$")
REP_NAME = re.compile(r"^([^/]+)/rep-(\d+)$")


class SchemaError(ValueError):
    """A file of the run folder that does not follow the schema (one line: file, field, why)."""


class HostileJSON(SchemaError):
    """A file whose JSON holds what no run folder does: NaN or Infinity, a number beyond 64 bits or
    out of the float range, or nesting deeper than :data:`MAX_JSON_DEPTH` (forged or corrupt)."""


#: deepest nesting of objects and lists a run folder's JSON may have (its files need 5)
MAX_JSON_DEPTH = 32
#: integers a run folder's JSON may hold: 64-bit signed
MAX_JSON_INT = 2**63


# -- layout ---------------------------------------------------------------------------------------
def rep_name(configuration, repetition):
    """``CONFIG/rep-NN``, the name of a repetition (and its folder relative to the run folder)."""
    return "%s/rep-%02d" % (configuration, int(repetition))


def parse_rep_name(name):
    """(configuration, repetition) of ``CONFIG/rep-NN``, or None."""
    match = REP_NAME.match(str(name))
    return (match.group(1), int(match.group(2))) if match else None


def rep_dir(run_dir, configuration, repetition):
    return os.path.join(str(run_dir), rep_name(configuration, repetition))


def repetition_folders(run_dir):
    """(configuration, folder name) of every ``CONFIG/rep-NN`` folder in a run folder."""
    found = []
    for config in sorted(os.listdir(run_dir)):
        config_dir = os.path.join(run_dir, config)
        if config.startswith(".") or not os.path.isdir(config_dir):
            continue
        for name in sorted(os.listdir(config_dir)):
            if REP_DIR.match(name) and os.path.isdir(os.path.join(config_dir, name)):
                found.append((config, name))
    return found


def lab_config_folder(run_dir, configuration, files):
    """Where a configuration's rendered lab configuration ``files`` ({host: {name: text}}) goes, and
    whether it is there already: ``<config>/lab``, or when that holds other content (a resumed run
    whose lab changed), the first of ``lab-2``, ``lab-3``... that is free or holds the same. Never a
    folder with other content: nothing in a run folder is overwritten."""
    base = os.path.join(str(run_dir), configuration)
    for n in range(1, 100):
        folder = os.path.join(base, LAB_CONFIGS if n == 1 else "%s-%d" % (LAB_CONFIGS, n))
        if not os.path.lexists(folder):
            return folder, False
        if _holds(folder, files):
            return folder, True
    raise SchemaError("%s: no free lab configuration folder (lab .. lab-99 taken)" % base)


def _holds(folder, files):
    found = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            rel = os.path.relpath(os.path.join(root, name), folder)
            with open(os.path.join(root, name), "rb") as handle:
                found[rel] = handle.read()
    want = {
        "%s/%s" % (host, name): text.encode("utf-8")
        for host, entries in files.items()
        for name, text in entries.items()
    }
    return found == want


def check_lab_configs(files):
    """Raise SchemaError unless ``files`` is {host: {file name: text}} with plain names."""
    if not isinstance(files, dict) or not files:
        raise SchemaError("lab_configs: expected {host: {file name: text}}, got %r" % (files,))
    for host, entries in files.items():
        if not _plain_name(host):
            raise SchemaError("lab_configs: expected a host name, got %r" % (host,))
        if not isinstance(entries, dict):
            raise SchemaError("lab_configs.%s: expected {file name: text}, got %r" % (host, entries))
        for name, text in entries.items():
            if not _plain_name(name):
                raise SchemaError("lab_configs.%s: expected a plain file name, got %r" % (host, name))
            if not isinstance(text, str):
                raise SchemaError(
                    "lab_configs.%s.%s: expected text, got %s" % (host, name, type(text).__name__)
                )


def _plain_name(name):
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\0" not in name


def daemon_logs(run_dir):
    """The folder of the daemons' event logs, ``<run>/daemon`` (one ``<node>.jsonl`` each)."""
    return os.path.join(str(run_dir), DAEMON_LOGS)


def is_complete(run_dir, name):
    """A repetition is complete when its folder holds events.json (written last)."""
    return os.path.isfile(os.path.join(str(run_dir), name, EVENTS))


# -- field checks ---------------------------------------------------------------------------------
_KINDS = {
    "str": ((str,), "a string"),
    "int": ((int,), "an integer"),
    "number": ((int, float), "a number"),
    "bool": ((bool,), "a boolean"),
    "list": ((list,), "a list"),
    "dict": ((dict,), "an object"),
}


def _is(value, kind, nullable):
    if value is None:
        return nullable
    types = _KINDS[kind][0]
    if isinstance(value, bool) and kind in ("int", "number"):
        return False
    return isinstance(value, types)


def _check_fields(data, spec, where):
    """``spec``: field -> (kind, required, nullable). Raises SchemaError for the first bad field."""
    if not isinstance(data, dict):
        raise SchemaError("%s: expected an object, got %s" % (where, type(data).__name__))
    for name, (kind, required, nullable) in spec.items():
        if name not in data:
            if required:
                raise SchemaError("%s: %s: missing" % (where, name))
            continue
        if not _is(data[name], kind, nullable):
            raise SchemaError(
                "%s: %s: expected %s%s, got %r"
                % (where, name, _KINDS[kind][1], " or null" if nullable else "", data[name])
            )


def _check_list(items, kind, where):
    for i, item in enumerate(items):
        if not _is(item, kind, False):
            raise SchemaError("%s[%d]: expected %s, got %r" % (where, i, _KINDS[kind][1], item))


#: field -> (kind, required, nullable)
MANIFEST_FIELDS = {
    "schema_version": ("int", True, False),
    "test": ("str", True, False),
    "run": ("str", True, False),
    "started_at": ("str", True, False),
    "ended_at": ("str", False, False),
    "files": ("dict", False, False),
    "resumptions": ("list", False, False),
    "configurations": ("list", False, False),
    "repetitions": ("int", False, False),
    "ssids": ("dict", False, False),
    "addresses": ("dict", False, False),
}
EVENTS_FIELDS = {
    "schema_version": ("int", True, False),
    "configuration": ("str", True, False),
    "repetition": ("int", True, False),
    "errors": ("list", True, False),
    "hosts_down": ("list", True, False),
    "hosts_absent": ("list", True, False),
    "handovers": ("list", True, False),
    "captures": ("dict", True, False),
    "transfer": ("dict", True, False),
}
HANDOVER_FIELDS = {
    "direction": ("str", True, False),
    "handover_at": ("number", True, True),
    "from_ssid": ("str", True, True),
    "to_ssid": ("str", True, True),
    "associated_at": ("number", True, True),
    "scan_first": ("bool", True, False),
    "ok": ("bool", True, False),
    "error": ("str", True, True),
}
TRANSFER_FIELDS = {
    "bytes": ("int", True, True),
    "sha256": ("str", True, True),
    "sha256_ok": ("bool", True, False),
    "status": ("str", True, False),
    "started_at": ("number", True, True),
    "finished_at": ("number", True, True),
    "error": ("str", True, True),
}
OUTCOME_FIELDS = {
    "schema_version": ("int", True, False),
    "test": ("str", True, True),
    "run": ("str", True, False),
    "repetitions": ("list", True, False),
    "missing": ("list", True, False),
}
OUTCOME_ENTRY_FIELDS = {
    "name": ("str", True, False),
    "configuration": ("str", True, False),
    "repetition": ("int", True, False),
    "passed": ("bool", True, False),
    "transfer": ("str", True, False),
    "sha256_ok": ("bool", True, False),
    "handovers_ok": ("bool", True, False),
    "reason": ("str", True, True),
}
HANDOVERS_FIELDS = {
    "schema_version": ("int", True, False),
    "test": ("str", True, False),
    "run": ("str", True, False),
    "analyser": ("dict", True, False),
    "reps": ("list", True, False),
    "warnings": ("list", True, False),
}


def _check_version(data, where):
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise SchemaError(
            "%s: schema_version: %d is newer than this reader's %d (update mvpn-lab)"
            % (where, version, SCHEMA_VERSION)
        )


def check_manifest(data, where=MANIFEST):
    """Raise SchemaError unless ``data`` is a manifest of the current schema."""
    _check_version(data, where)
    _check_fields(data, MANIFEST_FIELDS, where)
    for i, entry in enumerate(data.get("configurations") or []):
        if isinstance(entry, dict):
            entry = entry.get("id")
        if not isinstance(entry, str) or not entry:
            raise SchemaError(
                "%s: configurations[%d].id: expected a non-empty string, got %r" % (where, i, entry)
            )
    return data


def check_events(data, where=EVENTS):
    """Raise SchemaError unless ``data`` is an events record of the current schema."""
    _check_version(data, where)
    _check_fields(data, EVENTS_FIELDS, where)
    for name in ("errors", "hosts_down", "hosts_absent"):
        _check_list(data[name], "str", "%s: %s" % (where, name))
    for i, handover in enumerate(data["handovers"]):
        here = "%s: handovers[%d]" % (where, i)
        _check_fields(handover, HANDOVER_FIELDS, here)
        if handover["direction"] not in DIRECTIONS:
            raise SchemaError("%s.direction: expected away or home, got %r" % (here, handover["direction"]))
        for name in ("handover_at", "associated_at"):
            handover_time(handover, name, here)
    for node, counts in data["captures"].items():
        if not isinstance(counts, dict):
            raise SchemaError("%s: captures.%s: expected an object, got %r" % (where, node, counts))
        for key, value in counts.items():
            if not _is(value, "int", False):
                raise SchemaError(
                    "%s: captures.%s.%s: expected an integer, got %r" % (where, node, key, value)
                )
    _check_fields(data["transfer"], TRANSFER_FIELDS, "%s: transfer" % where)
    return data


def check_outcome(data, where=OUTCOME):
    """Raise SchemaError unless ``data`` is an outcome of the current schema."""
    _check_version(data, where)
    _check_fields(data, OUTCOME_FIELDS, where)
    for i, entry in enumerate(data["repetitions"]):
        _check_fields(entry, OUTCOME_ENTRY_FIELDS, "%s: repetitions[%d]" % (where, i))
    _check_list(data["missing"], "str", "%s: missing" % where)
    return data


def check_handovers(data, where=HANDOVERS):
    """Raise SchemaError unless ``data`` is the analyser's handovers.json of the current schema."""
    _check_version(data, where)
    _check_fields(data, HANDOVERS_FIELDS, where)
    for i, rep in enumerate(data["reps"]):
        here = "%s: reps[%d]" % (where, i)
        _check_fields(
            rep,
            {"config": ("str", True, False), "rep": ("int", True, False), "handovers": ("list", True, False)},
            here,
        )
        for j, handover in enumerate(rep["handovers"]):
            direction = handover.get("direction") if isinstance(handover, dict) else None
            if direction not in DIRECTIONS:
                raise SchemaError(
                    "%s.handovers[%d].direction: expected away or home, got %r" % (here, j, direction)
                )
    return data


# -- reading --------------------------------------------------------------------------------------
class _Refused(ValueError):
    pass


def _no_constant(name):
    raise _Refused("%s is not a number JSON allows" % name)


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("number %s is out of range" % text[:40])
    return value


def _bounded_int(text):
    if len(text.lstrip("-")) > 19 or abs(int(text)) >= MAX_JSON_INT:
        raise _Refused("integer %s%s is beyond 64 bits" % (text[:40], "..." if len(text) > 40 else ""))
    return int(text)


def _depth(data):
    """How deeply objects and lists nest in ``data`` (iteratively: no recursion limit to hit)."""
    deepest = 0
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        elif not isinstance(value, list):
            continue
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            break
        stack.extend((item, depth + 1) for item in value if isinstance(item, (dict, list)))
    return deepest


def loads(text):
    """JSON text as the run folder's files hold it: HostileJSON for NaN or Infinity, integers
    beyond 64 bits, numbers out of the float range and nesting deeper than MAX_JSON_DEPTH;
    ValueError for text that is not JSON."""
    try:
        data = json.loads(
            text, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int
        )
    except _Refused as exc:
        raise HostileJSON(str(exc)) from None
    except RecursionError:
        raise HostileJSON("nested more than %d levels deep" % MAX_JSON_DEPTH) from None
    except ValueError as exc:
        if "digits" in str(exc):  # Python's own limit on integer digits
            raise HostileJSON("an integer is beyond 64 bits") from None
        raise
    if _depth(data) > MAX_JSON_DEPTH:
        raise HostileJSON("nested more than %d levels deep" % MAX_JSON_DEPTH)
    return data


def regular_file_error(path):
    """Why ``path`` cannot be read as a file of the run folder (None: it is a regular file). A FIFO
    or a device would be read forever; stat does not open it."""
    try:
        mode = os.stat(str(path)).st_mode
    except OSError as exc:
        return one_line(exc)
    if stat.S_ISREG(mode):
        return None
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return "not a regular file (%s); refused" % kind
    return "not a regular file; refused"


def read_json(path):
    """The JSON object of a file; SchemaError (one line) when unreadable or not an object,
    HostileJSON (a SchemaError) for values no run folder holds (see :func:`loads`)."""
    refused = regular_file_error(path)
    if refused is not None:
        raise SchemaError("%s: unreadable: %s" % (path, refused))
    try:
        with open(str(path), "rb") as fh:
            data = loads(fh.read())
    except HostileJSON as exc:
        raise HostileJSON("%s: unreadable: %s" % (path, exc)) from None
    except (OSError, ValueError) as exc:
        raise SchemaError("%s: unreadable: %s" % (path, one_line(exc))) from None
    if not isinstance(data, dict):
        raise SchemaError("%s: expected a JSON object, got %s" % (path, type(data).__name__))
    return data


def epoch_error(value):
    """Why ``value`` is not a time in seconds since the epoch (None: it is one). A boolean (True
    would be 1 s after 1970) or a negative time would make a handover of 1.7e9 s."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "expected seconds since the epoch, got %r" % (value,)
    if not math.isfinite(value) or value < 0:
        return "expected seconds since the epoch (not negative), got %r" % (value,)
    return None


def handover_time(item, field, where):
    """A handover's ``handover_at`` or ``associated_at`` as a float; None when missing, null or not
    a number at all (a number written as text, as templates of schema 0 did, is read); SchemaError
    for a boolean, a negative or a non-finite number."""
    value = item.get(field) if isinstance(item, dict) else None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if value is None or not isinstance(value, (int, float)):
        return None
    error = epoch_error(value)
    if error is not None:
        raise SchemaError("%s.%s: %s" % (where, field, error))
    return float(value)


def version_of(data):
    """The schema version of a file's content (0: written before the schema)."""
    version = data.get("schema_version") if isinstance(data, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else 0


def legacy_note(name):
    return "%s has no schema_version: written before run-folder schema %d, read as such" % (
        name,
        SCHEMA_VERSION,
    )


def home_ssid(manifest):
    """The home network's SSID a manifest recorded (``ssids.home``), or None."""
    ssids = manifest.get("ssids") if isinstance(manifest, dict) else None
    value = ssids.get("home") if isinstance(ssids, dict) else None
    return value if isinstance(value, str) and value else None


def upgrade_events(data, manifest=None):
    """An events record in the current shape, and the notes on what was assumed.

    Version 0 (no ``schema_version``): booleans written as strings become booleans, and each
    handover's ``direction`` comes from its ``to_ssid``: home when it is the manifest's home SSID
    (``ssids.home``) or, when the manifest has none, :data:`LEGACY_HOME_SSID`. Missing parts take
    their empty value. Version 1 is checked and returned as is.
    """
    if version_of(data) >= 1:
        return check_events(data), []
    data = dict(data) if isinstance(data, dict) else {}
    notes = [legacy_note(EVENTS)]
    home = home_ssid(manifest)
    if home is None:
        home = LEGACY_HOME_SSID
        notes.append("the manifest records no home SSID: handovers to %s count as going home" % home)
    handovers = []
    for item in data.get("handovers") if isinstance(data.get("handovers"), list) else []:
        item = dict(item) if isinstance(item, dict) else {}
        for key in ("ok", "scan_first"):
            if key in item:
                item[key] = truthy(item[key])
        if item.get("direction") not in DIRECTIONS:
            item["direction"] = "home" if str(item.get("to_ssid", "")) == home else "away"
        handovers.append(item)
    data["handovers"] = handovers
    transfer = dict(data["transfer"]) if isinstance(data.get("transfer"), dict) else {}
    if "sha256_ok" in transfer:
        transfer["sha256_ok"] = truthy(transfer["sha256_ok"])
    data["transfer"] = transfer
    for name in ("errors", "hosts_down", "hosts_absent"):
        if not isinstance(data.get(name), list):
            data[name] = []
    if not isinstance(data.get("captures"), dict):
        data["captures"] = {}
    data["schema_version"] = 0
    return data, notes


def read_manifest(run_dir):
    """(manifest, notes) of a run folder; SchemaError when missing, unreadable or not following the
    schema (a manifest without schema_version is read with a note)."""
    path = os.path.join(str(run_dir), MANIFEST)
    if not os.path.lexists(path):
        raise SchemaError("%s is not a run folder (no %s)" % (run_dir, MANIFEST))
    data = read_json(path)
    if version_of(data) == 0:
        return data, [legacy_note(MANIFEST)]
    return check_manifest(data, path), []


def read_events(path, manifest=None):
    """(events, notes) of a repetition's events.json, in the current shape (see upgrade_events)."""
    data = read_json(path)
    try:
        return upgrade_events(data, manifest)
    except SchemaError as exc:
        raise SchemaError("%s: %s" % (path, str(exc).split(": ", 1)[1])) from None


def read_outcome(run_dir):
    """outcome.json of a run folder, checked (version 0: read as is, with a note); SchemaError."""
    path = os.path.join(str(run_dir), OUTCOME)
    data = read_json(path)
    if version_of(data) == 0:
        if not isinstance(data.get("repetitions"), list):
            raise SchemaError("%s: repetitions: expected a list" % path)
        return data, [legacy_note(OUTCOME)]
    return check_outcome(data, path), []


def read_answers(run_dir):
    """(answers, skipped) from the daemons' event logs of a run folder: every ``answer`` line, as a
    dict with :data:`ANSWER_FIELDS` and ``node`` (the log's name), ordered by ``epoch``;
    ``skipped`` counts lines that mention ``"answer"`` but are not JSON objects, or whose answer
    fields are missing or of the wrong kind. No folder or no log: no answers (runs from before
    the daemon timed its answers have none)."""
    folder = daemon_logs(run_dir)
    answers, skipped = [], 0
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".jsonl"))
    except OSError:
        return [], 0
    for name in names:
        try:
            with open(os.path.join(folder, name), errors="replace") as fh:
                lines = fh.read().splitlines()
        except OSError:
            skipped += 1
            continue
        for line in lines:
            if '"%s"' % ANSWER_EVENT not in line:
                continue
            try:
                record = loads(line)
            except ValueError:  # HostileJSON too
                skipped += 1
                continue
            if not isinstance(record, dict):
                skipped += 1
                continue
            if record.get("event") != ANSWER_EVENT:
                continue
            if not all(_is(record.get(f), kind, False) for f, kind in ANSWER_FIELDS.items()):
                skipped += 1
                continue
            answer = dict((f, record[f]) for f in ANSWER_FIELDS)
            answer.update(
                (f, record[f]) for f, kind in ANSWER_OPTIONAL.items() if _is(record.get(f), kind, False)
            )
            answer["node"] = name[: -len(".jsonl")]
            answers.append(answer)
    answers.sort(key=lambda a: a["epoch"])
    return answers, skipped


def plan_of(manifest):
    """(configuration ids, repetitions) a handover test's manifest plans, or None."""
    if not isinstance(manifest, dict):
        return None
    rows = manifest.get("configurations")
    if not isinstance(rows, list) or not rows:
        return None
    ids = [r.get("id") if isinstance(r, dict) else r for r in rows]
    if not all(isinstance(i, str) and i for i in ids):
        return None
    try:
        repetitions = int(manifest.get("repetitions"))
    except (TypeError, ValueError):
        return None
    if repetitions < 1:
        return None
    return ids, repetitions


# -- building -------------------------------------------------------------------------------------
def new_manifest(content, test, run, started_at):
    """The manifest of a new run: the caller's content, then the schema's own fields."""
    manifest = dict(content)
    manifest.setdefault("test", test)
    manifest["run"] = run
    manifest["started_at"] = started_at
    manifest["schema_version"] = SCHEMA_VERSION
    return check_manifest(manifest)


NOT_RUN = "not run: the mobile node took no part in this repetition"


def _number(value):
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None  # JSON has no NaN or Infinity


def _int(value):
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text(value):
    return None if value is None or value == "" else str(value)


def handover_record(direction, result, scan_first):
    """One handover of events.json from the ``mvpn.lab.handover`` task's registered result.

    ``result`` None or empty: the mobile node took no part. It is ``ok`` when the task neither
    failed nor stayed unchanged (a station already on the target network made no handover).
    """
    if direction not in DIRECTIONS:
        raise SchemaError("handovers: direction: expected away or home, got %r" % (direction,))
    result = result if isinstance(result, dict) and result else {"failed": True, "msg": NOT_RUN}
    failed = truthy(result.get("failed", False)) or truthy(result.get("unreachable", False))
    changed = truthy(result.get("changed", False))
    if failed:
        error = _text(result.get("msg")) or "failed"
    elif changed:
        error = None
    else:
        error = "no handover: the station was on %s already" % (result.get("to_ssid") or "?")
    return {
        "direction": direction,
        "handover_at": _number(result.get("handover_at")),
        "from_ssid": _text(result.get("from_ssid")),
        "to_ssid": _text(result.get("to_ssid")),
        "associated_at": _number(result.get("associated_at")),
        "scan_first": truthy(scan_first),
        "ok": not failed and changed,
        "error": error,
    }


def transfer_record(result):
    """The transfer of events.json from the ``mvpn.lab.transfer`` (state=stopped) registered result."""
    result = result if isinstance(result, dict) else {}
    return {
        "bytes": _int(result.get("bytes")),
        "sha256": _text(result.get("sha256")),
        "sha256_ok": truthy(result.get("sha256_ok", False)),
        "status": _text(result.get("status")) or "unknown",
        "started_at": _number(result.get("started_at")),
        "finished_at": _number(result.get("finished_at")),
        "error": _text(result.get("error")),
    }


def capture_record(result):
    """tcpdump's counts (``packets_*``) from a ``mvpn.lab.capture`` (state=stopped) result."""
    result = result if isinstance(result, dict) else {}
    counts = {}
    for key, value in sorted(result.items()):
        if key.startswith("packets_") and _int(value) is not None:
            counts[key] = _int(value)
    return counts


def events_record(
    configuration,
    repetition,
    hosts,
    took_part,
    hosts_down=(),
    errors=(),
    handovers=None,
    transfer=None,
    captures=None,
    scan_first=False,
):
    """events.json of one repetition, from what its tasks returned.

    ``hosts``: every lab host of the play; ``took_part``: those that ran this repetition (the
    others are ``hosts_absent``); ``hosts_down``: those that did not answer; ``errors``: one line
    per failed task; ``handovers``: direction -> the handover task's result (None: not run);
    ``transfer``: the transfer task's result; ``captures``: node -> the capture task's result.
    """
    took_part = [str(h) for h in took_part or []]
    handovers = handovers or {}
    record = {
        "schema_version": SCHEMA_VERSION,
        "configuration": str(configuration),
        "repetition": int(repetition),
        "errors": [one_line(e) for e in errors or [] if e and one_line(e)],
        "hosts_down": [str(h) for h in hosts_down or []],
        "hosts_absent": [str(h) for h in hosts or [] if str(h) not in took_part],
        "handovers": [handover_record(d, handovers.get(d), scan_first) for d in DIRECTIONS],
        "captures": dict((str(node), capture_record(r)) for node, r in sorted((captures or {}).items())),
        "transfer": transfer_record(transfer),
    }
    return check_events(record)


def outcome_entry(events, configuration, repetition):
    """One entry of outcome.json from a repetition's events (the rule: module_utils/repetition.py)."""
    entry = {
        "name": rep_name(configuration, repetition),
        "configuration": configuration,
        "repetition": int(repetition),
    }
    entry.update(verdict(events))
    return entry


def detail(exc, path):
    """A SchemaError's text without the file's path and "unreadable:" in front."""
    text = str(exc)
    for prefix in ("%s: " % path, "unreadable: "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return text


def unreadable_entry(configuration, repetition, error):
    entry = outcome_entry({}, configuration, repetition)
    entry.update(passed=False, reason="events.json unreadable: %s" % one_line(error))
    return entry


def outcome(run_dir, manifest):
    """outcome.json of a handover test's run from its repetitions' events.json, in the plan's order.

    SchemaError when the manifest has no plan (configurations with ids and repetitions).
    """
    plan = plan_of(manifest)
    if plan is None:
        raise SchemaError(
            "%s of %s has no plan (configurations, each with an id, and a number of repetitions)"
            % (MANIFEST, run_dir)
        )
    ids, repetitions = plan
    entries = []
    missing = []
    for config in ids:
        for rep in range(1, repetitions + 1):
            path = os.path.join(rep_dir(run_dir, config, rep), EVENTS)
            if not os.path.isfile(path):
                missing.append(rep_name(config, rep))
                continue
            try:
                events, _notes = read_events(path, manifest)
            except SchemaError as exc:
                entries.append(unreadable_entry(config, rep, detail(exc, path)))
                continue
            entries.append(outcome_entry(events, config, rep))
    return check_outcome(
        {
            "schema_version": SCHEMA_VERSION,
            "test": manifest.get("test"),
            "run": os.path.basename(os.path.normpath(str(run_dir))),
            "repetitions": entries,
            "missing": missing,
        }
    )


def write_json(path, data):
    """Write a file of the run folder atomically (a reader never sees half of it)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=False, allow_nan=False)
        fh.write("\n")
    os.rename(tmp, path)
