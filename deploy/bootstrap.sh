#!/usr/bin/env bash
# Make this machine able to run wastecart: Debian packages (mosquitto, libzbar0, python3-venv, a CJK font,
# chromium for the kiosk browser tests)
# and a .venv with the package and its extras.  Safe to run again; does only what is missing.
# Used by `make demo` / `make test`; on a fresh Debian 12 / Raspberry Pi OS with Python 3.11.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

"$PYTHON" - <<'PY' || { echo "wastecart needs Python >= 3.11 (found $("$PYTHON" --version 2>&1))" >&2; exit 1; }
import sys; sys.exit(sys.version_info < (3, 11))
PY

missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
ldconfig -p 2>/dev/null | grep -q 'libzbar\.so\.0' || missing+=(libzbar0)
# Chinese text on labels (edge/labels/): any CJK font will do, this one is what carts ship with.
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || fc-list :lang=zh 2>/dev/null | grep -q . \
  || missing+=(fonts-wqy-microhei)
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
# Chromium: the kiosk's browser tests (tests/browser, driven by Playwright; never a downloaded
# browser).  A machine that will not run them may set WASTECART_NO_BROWSER=1 to skip it (large).
if [ -z "${WASTECART_NO_BROWSER:-}" ] && [ -z "${WASTECART_CHROMIUM:-}" ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi
# Prometheus and promtool: the tests check deploy/prometheus/ (rules, a real scrape of the gateway).
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# GNU time: `make bench` reads the peak memory of the ledger export children with it.
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing Debian packages: ${missing[*]}" >&2
    echo "run:  sudo apt-get install -y ${missing[*]}   then run make again" >&2
    exit 1
  fi
fi
# The system's own mosquitto service is not needed (demo and tests start a private broker).

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e '.[edge,sim,dev,gateway]'
touch "$VENV/.installed"
