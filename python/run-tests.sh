#!/usr/bin/env bash
# Build the natten Python package against a libnatten build or install, into a
# throw-away folder, and run its pytest suite there.
#
#   python/run-tests.sh --build-dir BUILD [pytest args...]   # a configured, built tree (make)
#   python/run-tests.sh --prefix PREFIX   [pytest args...]   # after make install
#   python/run-tests.sh                   [pytest args...]   # NATTEN_* variables or pkg-config
#
# Needs python3 with numpy, pytest and setuptools (or pip, to fetch setuptools) (torch optional: its tests
# skip without it; CUDA tests skip without a GPU or a CUDA backend).  PYTHON picks
# the interpreter.  NATTEN_TEST_INDUCTOR=1 adds torch.compile's inductor backend
# (slow to compile on small hosts).  Prints pytest's summary line; exits 0 only
# if every collected test passed or skipped and at least one was collected.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-python3}

while [ $# -gt 0 ]; do
    case $1 in
    --build-dir) export NATTEN_BUILD_DIR=$(cd "$2" && pwd) || exit 2; shift 2 ;;
    --prefix) export NATTEN_PREFIX=$(cd "$2" && pwd) || exit 2; shift 2 ;;
    --) shift; break ;;
    *) break ;;
    esac
done

# What the build and the tests need, checked up front with a plain message.
"$PY" - <<'PYEOF' || exit 1
import importlib.util, os, sys, sysconfig
missing = [m for m in ("numpy", "pytest") if importlib.util.find_spec(m) is None]
if importlib.util.find_spec("setuptools") is None and importlib.util.find_spec("pip") is None:
    missing.append("setuptools (or pip to fetch it)")
if not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")):
    missing.append("Python.h (the python3-dev package)")
if missing:
    sys.exit("run-tests.sh: %s lacks: %s" % (sys.executable, ", ".join(missing)))
PYEOF

work=$(mktemp -d "${TMPDIR:-/tmp}/natten-py.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT

# A copy of the package sources, so that the build leaves nothing in the tree.
mkdir -p "$work/src" && cp -r "$here/pyproject.toml" "$here/setup.py" "$here/natten" "$work/src/" || exit 2
rm -f "$work"/src/natten/*.so
src=${NATTEN_BUILD_DIR:+build tree $NATTEN_BUILD_DIR}
src=${src:-${NATTEN_PREFIX:+prefix $NATTEN_PREFIX}}
echo "run-tests.sh: building natten against libnatten from ${src:-NATTEN_* variables / pkg-config}"
if "$PY" -c 'import setuptools' 2>/dev/null; then
    # setuptools here: build offline, without pip (old setuptools cannot make wheels without
    # the wheel package, and a GPU host may have no network).
    (cd "$work/src" && "$PY" setup.py -q build --build-base "$work/build") >"$work/build.log" 2>&1 &&
        mkdir -p "$work/site" && cp -r "$work"/build/lib*/natten "$work/site/"
else
    # no setuptools: pip fetches it into an isolated build environment; --target keeps every
    # environment unmodified (hence also PEP 668's override).
    PIP_BREAK_SYSTEM_PACKAGES=1 "$PY" -m pip install -q --no-deps --no-compile \
        --target "$work/site" "$work/src" >"$work/build.log" 2>&1
fi
if [ $? -ne 0 ] || ! ls "$work"/site/natten/_C*.so >/dev/null 2>&1; then
    cat "$work/build.log"
    echo "run-tests.sh: building the extension failed"
    exit 1
fi

# Run from the scratch folder so that the source tree's natten/ cannot shadow the build;
# test paths given relative to the caller's folder are made absolute first.
args=()
for a in "$@"; do
    if [ -e "${a%%::*}" ]; then a="$(cd "$(dirname "${a%%::*}")" && pwd)/$(basename "$a")"; fi
    args+=("$a")
done
[ ${#args[@]} -gt 0 ] && [ -e "${args[0]%%::*}" ] || args=("$here/tests" "${args[@]}")
cd "$work" || exit 2
PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m pytest -p no:cacheprovider -q -rs "${args[@]}"
rc=$?
case $rc in
0) echo "run-tests.sh: all collected tests passed or skipped" ;;
5) echo "run-tests.sh: no tests were collected"; rc=1 ;;
*) echo "run-tests.sh: pytest exited with status $rc" ;;
esac
exit $rc
