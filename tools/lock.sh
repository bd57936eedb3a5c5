#!/usr/bin/env bash
# Regenerate constraints.txt, the exact versions that CI and the README's install use, from the
# ranges in pyproject.toml (which stay ranges, for Colab and other installs).
#
#   python -m pip install uv && bash tools/lock.sh
#
# uv resolves for every platform and Python >= 3.10 at once (--universal), so the file also
# serves a learner's laptop. torch and torchvision are held at releases whose PyPI (CUDA) build
# loads torchvision's operators on a CPU; never pin torch to a local "+cpu" build's version.
# After regenerating, run `bash .ci/run` in a fresh venv before committing the new file.
set -euo pipefail
cd "$(dirname "$0")/.."
uv pip compile pyproject.toml --extra book --extra dev --universal --python-version 3.10 \
  --constraint <(printf 'torch==2.14.1\ntorchvision==0.29.1\n') \
  --no-header --output-file constraints.txt
sed -i '1i # Exact versions CI last passed with. Regenerate: bash tools/lock.sh (see its header).' constraints.txt
