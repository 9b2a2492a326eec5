"""``mvpn-lab run``: the experiment runner of the handover tests (Tests 2, 3 and 4).

It runs ``playbooks/<test>.yml`` through ansible-runner with the plan (configurations,
repetitions) as extra variables, shows a progress bar of the repetitions, resumes an
interrupted run and prints the repetitions that failed. See docs/runner.md.

* :mod:`.project` finds the checkout (the collection) whose playbooks it runs;
* :mod:`.matrix` reads the configuration matrix and the tests' settings, and makes the plan;
* :mod:`.rundir` reads a run folder: its plan, complete repetitions and outcome;
* :mod:`.events` turns ansible-runner events into progress notices;
* :mod:`.display` shows them (rich) and prints the final table;
* :mod:`.run` runs the playbook; :mod:`.cli` is the sub-command.
"""
