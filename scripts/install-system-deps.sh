#!/usr/bin/env bash
# Debian packages the tests use, installed when missing (npm test's pretest; CI runs as root):
#   chromium                                  the report's browser test (playwright cannot download its own browser here)
#   slurmctld slurmd slurm-client munge       the Slurm executor's tests start a single-node Slurm on localhost
# Where they cannot be installed, the tests that need them say so and skip.
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
missing=()
have chromium || missing+=(chromium)
have slurmctld || missing+=(slurmctld)
have slurmd || missing+=(slurmd)
have sbatch || missing+=(slurm-client)
have munged || missing+=(munge)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "not installed: ${missing[*]} (need root and apt-get); the tests that use them will be skipped" >&2
fi
