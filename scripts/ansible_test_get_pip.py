"""Stand-in for pip's get-pip.py, used by ansible-test to bootstrap pip in its sanity venvs.

ansible-test downloads get-pip.py from a host this machine cannot reach; scripts/test.sh
puts this file in ansible-test's cache instead. It does the same job with the
interpreter's own ensurepip, then installs the requested packages from the package index.
"""

import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
