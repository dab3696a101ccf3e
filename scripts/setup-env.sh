# Sourced by the demo and test scripts: a Python 3.11 venv with the pinned packages, and the
# front-end packages from the npm registry. Re-running it is cheap when nothing changed.
python_bin="${PYTHON:-}"
if [ -z "$python_bin" ]; then
  if command -v python3.11 >/dev/null 2>&1; then python_bin=python3.11; else python_bin=python3; fi
fi
[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
# shellcheck disable=SC1091
source .venv/bin/activate
requirements="${REQUIREMENTS:-requirements.txt}"
stamp=".venv/.installed-$(cat "$requirements" requirements.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  python -m pip install -q --upgrade pip
  python -m pip install -q -r "$requirements"
  touch "$stamp"
fi
if [ ! -d node_modules/openseadragon ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
