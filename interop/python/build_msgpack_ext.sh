#!/usr/bin/env bash
# Rebuild msgpack 0.6.2's C extension (msgpack._cmsgpack) inside a Python 3.11+ venv.
#
# Usage:  build_msgpack_ext.sh VENV_PYTHON
#         e.g. build_msgpack_ext.sh /path/to/venv/bin/python
#
# Why: PyPI has no cp311 wheel for msgpack 0.6.2 (the version PySOA 1.4.9 pins). pip builds the sdist,
# whose Cython-generated _cmsgpack.cpp does not compile on Python 3.11 (`longintrepr.h` moved to
# `cpython/longintrepr.h`; the private `_PyFloat_Pack4/8` / `_PyFloat_Unpack4/8` were replaced by the public
# `PyFloat_Pack4/8` / `PyFloat_Unpack4/8`). msgpack's setup.py swallows the compiler error and silently
# installs only the pure-Python fallback (msgpack.fallback), which makes PySOA much slower than it is with
# the C extension it was always used with in production. This script:
#
#   1. exits 0 at once if `from msgpack import _cmsgpack` already works in VENV_PYTHON;
#   2. checks for a C++ compiler and the Python headers (it never installs system packages);
#   3. downloads the msgpack==0.6.2 sdist with pip (--no-binary :all:);
#   4. installs Cython 0.29.x (`Cython<3`) into a scratch directory (not into the venv) and re-cythonizes
#      msgpack/_cmsgpack.pyx (which includes _packer.pyx and _unpacker.pyx);
#   5. patches the sources for Python >= 3.11 (guarded by PY_VERSION_HEX, so older Pythons are unaffected);
#   6. makes setup.py fail loudly instead of falling back, builds a wheel, checks it contains the
#      extension, and installs it into the venv (--force-reinstall --no-deps);
#   7. verifies msgpack.Packer/Unpacker come from msgpack._cmsgpack, that the C and pure-Python packers
#      produce identical bytes, and that PySOA's MsgpackSerializer round-trips datetimes/Decimals/etc.
#
# Needs network access to PyPI (msgpack sdist, Cython, and setuptools/wheel for the isolated build).
# Environment: MSGPACK_BUILD_DIR=DIR  use DIR as the scratch directory and keep it (default: a temp dir,
#              deleted on exit).
set -euo pipefail

MSGPACK_VERSION=0.6.2

log() { printf '[build_msgpack_ext] %s\n' "$*"; }
die() { printf '[build_msgpack_ext] ERROR: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 VENV_PYTHON"
PY=$1
case "$PY" in
    */*) ;;
    *) PY=$(command -v "$PY") || die "not found on PATH: $1" ;;
esac
[ -x "$PY" ] && [ -f "$PY" ] || die "not an executable: $PY"
# Make it absolute without resolving symlinks (a venv's bin/python is a symlink to the base interpreter).
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")

START=$(date +%s)

# --- 1. Idempotency ----------------------------------------------------------------------------------------
if "$PY" -c 'from msgpack import _cmsgpack' >/dev/null 2>&1; then
    log "msgpack C extension already present: $("$PY" -c 'import msgpack, msgpack._cmsgpack as c; print("msgpack %s, %s" % (".".join(map(str, msgpack.version)), c.__file__))')"
    log "nothing to do"
    exit 0
fi

log "python: $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"
if "$PY" -c 'import msgpack' >/dev/null 2>&1; then
    INSTALLED=$("$PY" -c 'import msgpack; print(".".join(map(str, msgpack.version)))')
    log "installed msgpack: $INSTALLED, using $("$PY" -c 'import msgpack; print(msgpack.Packer.__module__)') (no C extension)"
    if [ "$INSTALLED" != "$MSGPACK_VERSION" ]; then
        log "WARNING: installed msgpack is $INSTALLED; it will be replaced by $MSGPACK_VERSION"
    fi
else
    log "msgpack is not installed; $MSGPACK_VERSION will be installed"
fi

# --- 2. Toolchain ------------------------------------------------------------------------------------------
CXX_BIN=${CXX:-$("$PY" -c 'import sysconfig; print((sysconfig.get_config_var("CXX") or "g++").split()[0])')}
command -v "$CXX_BIN" >/dev/null 2>&1 || die "C++ compiler '$CXX_BIN' not found (msgpack's extension is C++; install g++)"
command -v gcc >/dev/null 2>&1 || command -v cc >/dev/null 2>&1 || die "no C compiler (gcc/cc) found"
INCLUDEPY=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
[ -f "$INCLUDEPY/Python.h" ] || die "Python headers missing: $INCLUDEPY/Python.h not found (install the python3.x dev headers)"
log "compiler: $(command -v "$CXX_BIN") ($("$CXX_BIN" -dumpversion)), Python headers: $INCLUDEPY"
if command -v python3-config >/dev/null 2>&1; then
    log "python3-config --includes: $(python3-config --includes 2>&1 || true)"
fi

# --- 3. Download the sdist ---------------------------------------------------------------------------------
if [ -n "${MSGPACK_BUILD_DIR:-}" ]; then
    WORK=$MSGPACK_BUILD_DIR
    rm -rf "$WORK"
    mkdir -p "$WORK"
    log "scratch directory (kept): $WORK"
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/msgpack-build.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    log "scratch directory (deleted on exit): $WORK"
fi

log "downloading msgpack==$MSGPACK_VERSION sdist"
"$PY" -m pip download --quiet --disable-pip-version-check --no-binary :all: --no-deps \
    -d "$WORK/dl" "msgpack==$MSGPACK_VERSION"
SDIST=$(ls "$WORK"/dl/msgpack-"$MSGPACK_VERSION".tar.gz 2>/dev/null) || die "sdist not downloaded"
tar -xzf "$SDIST" -C "$WORK"
SRC=$WORK/msgpack-$MSGPACK_VERSION
[ -f "$SRC/msgpack/_cmsgpack.pyx" ] || die "unexpected sdist layout: $SRC/msgpack/_cmsgpack.pyx missing"

# --- 4. Cython 0.29.x + re-cythonize -----------------------------------------------------------------------
log "installing Cython<3 into $WORK/cython (the venv is not touched)"
"$PY" -m pip install --quiet --disable-pip-version-check --target "$WORK/cython" 'Cython<3'
CYTHON_VERSION=$(PYTHONPATH="$WORK/cython" "$PY" -c 'import Cython; print(Cython.__version__)')
log "re-cythonizing msgpack/_cmsgpack.pyx with Cython $CYTHON_VERSION"
rm -f "$SRC/msgpack/_cmsgpack.cpp"
# Same as upstream's setup.py (cplus=True); the .pyx itself declares language_level=3 and its other directives.
(cd "$SRC" && PYTHONPATH="$WORK/cython" "$PY" -m cython --cplus -o msgpack/_cmsgpack.cpp msgpack/_cmsgpack.pyx \
    >"$WORK/cython.log" 2>&1) || { cat "$WORK/cython.log" >&2; die "cythonize failed"; }
head -n 1 "$SRC/msgpack/_cmsgpack.cpp" | grep -q "Generated by Cython $CYTHON_VERSION" \
    || die "_cmsgpack.cpp was not regenerated by Cython $CYTHON_VERSION"

# --- 5. Patch for Python >= 3.11 ---------------------------------------------------------------------------
# The public functions take (const) char* where the private ones took unsigned char*; C++ needs the casts.
COMPAT='/* build_msgpack_ext.sh: Python 3.11 removed the private float pack/unpack helpers; use the public ones. */
#if PY_VERSION_HEX >= 0x030B0000
#ifndef _PyFloat_Pack4
#define _PyFloat_Pack4(x, p, le) PyFloat_Pack4((x), (char *)(p), (le))
#define _PyFloat_Pack8(x, p, le) PyFloat_Pack8((x), (char *)(p), (le))
#define _PyFloat_Unpack4(p, le) PyFloat_Unpack4((const char *)(p), (le))
#define _PyFloat_Unpack8(p, le) PyFloat_Unpack8((const char *)(p), (le))
#endif
#endif
'
for h in pack_template.h unpack_template.h; do
    f=$SRC/msgpack/$h
    grep -q '_PyFloat_' "$f" || die "expected _PyFloat_* calls in $h (unexpected source)"
    { printf '%s\n' "$COMPAT"; cat "$f"; } >"$f.new" && mv "$f.new" "$f"
    log "patched $h: _PyFloat_{Pack,Unpack}{4,8} -> PyFloat_{Pack,Unpack}{4,8} on Python >= 3.11"
done
CPP=$SRC/msgpack/_cmsgpack.cpp
if grep -q '^ *#include "longintrepr.h"' "$CPP"; then
    # Older Cython: unconditional include. Make it version-dependent.
    sed -i 's|^\( *\)#include "longintrepr.h"|\1#if PY_VERSION_HEX >= 0x030B00A1\n\1#include "cpython/longintrepr.h"\n\1#else\n\1#include "longintrepr.h"\n\1#endif|' "$CPP"
    log "patched _cmsgpack.cpp: longintrepr.h -> cpython/longintrepr.h on Python >= 3.11"
else
    log "_cmsgpack.cpp: Cython $CYTHON_VERSION already handles longintrepr.h for Python 3.11 (no patch needed)"
fi
# The .cpp must stay newer than the .pyx, or setup.py would try to re-cythonize it (without Cython).
touch "$CPP"
# Make setup.py fail loudly instead of silently installing the pure-Python fallback.
sed -i 's|^\( *\)print(e)$|\1print(e)\n\1raise|' "$SRC/setup.py"
grep -q '^ *raise$' "$SRC/setup.py" || die "could not patch setup.py to fail loudly"

# --- 6. Build the wheel and install it ---------------------------------------------------------------------
log "building wheel (pip wheel, isolated build env)"
if ! "$PY" -m pip wheel --disable-pip-version-check --no-deps --no-cache-dir -w "$WORK/dist" "$SRC" \
        >"$WORK/build.log" 2>&1; then
    tail -n 40 "$WORK/build.log" >&2
    die "wheel build failed (full log: $WORK/build.log; set MSGPACK_BUILD_DIR to keep it)"
fi
WHEEL=$(ls "$WORK"/dist/msgpack-"$MSGPACK_VERSION"-*.whl 2>/dev/null | head -n 1)
[ -n "$WHEEL" ] || die "no wheel produced"
"$PY" - "$WHEEL" <<'EOF' || die "wheel does not contain msgpack/_cmsgpack*.so"
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
so = [n for n in names if n.startswith('msgpack/_cmsgpack') and n.endswith('.so')]
print('[build_msgpack_ext] wheel %s contains %s' % (sys.argv[1].rsplit('/', 1)[-1], so))
sys.exit(0 if so else 1)
EOF
log "installing $(basename "$WHEEL") into the venv"
"$PY" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall --no-cache-dir "$WHEEL"

# --- 7. Verify ---------------------------------------------------------------------------------------------
log "verifying"
"$PY" - <<'EOF' || die "verification failed"
import datetime
import decimal

import msgpack
from msgpack import _cmsgpack, fallback

assert msgpack.version == (0, 6, 2), msgpack.version
assert msgpack.Packer is _cmsgpack.Packer and msgpack.Packer.__module__ == 'msgpack._cmsgpack', msgpack.Packer
assert msgpack.Unpacker is _cmsgpack.Unpacker, msgpack.Unpacker
assert msgpack.unpackb is _cmsgpack.unpackb, msgpack.unpackb

# The C and pure-Python implementations must produce identical bytes, floats included (these go through the
# patched PyFloat_Pack4/8 and PyFloat_Unpack4/8).
value = {
    'str': 'h\u00e9llo', 'bytes': b'\x00\xff', 'int': -(2 ** 63), 'uint': 2 ** 64 - 1, 'small': 7,
    'float': 1.5e30, 'neg': -0.1, 'inf': float('-inf'), 'list': [1, 2.25, None, True, False, [], {}], 'big': 'x' * 70000,
}
for kwargs in ({'use_bin_type': True}, {'use_bin_type': True, 'use_single_float': True}):
    c_bytes = _cmsgpack.Packer(**kwargs).pack(value)
    py_bytes = fallback.Packer(**kwargs).pack(value)
    assert c_bytes == py_bytes, kwargs
    assert _cmsgpack.unpackb(c_bytes, raw=False) == fallback.unpackb(c_bytes, raw=False)
assert msgpack.unpackb(msgpack.packb(value, use_bin_type=True), raw=False) == value

# PySOA's serializer (ext types for datetimes, dates, times, Decimals, currint Amounts).
from pysoa.common.serializer.msgpack_serializer import MsgpackSerializer
import currint
import pytz

message = {
    'dt': datetime.datetime(2024, 2, 29, 13, 14, 15, 123456),
    'dt_utc': datetime.datetime(2024, 2, 29, 13, 14, 15, 654321, tzinfo=pytz.UTC),
    'date': datetime.date(1999, 12, 31),
    'time': datetime.time(23, 59, 58, 999999),
    'dec': decimal.Decimal('-12345.678900'),
    'amount': currint.Amount.from_code_and_minor('USD', 12345),
    'float': 3.25,
    'nested': [{'d': decimal.Decimal('1E+3')}, ('tuple', 1)],
    'bytes': b'raw',
}
serializer = MsgpackSerializer()
blob = serializer.dict_to_blob(message)
back = serializer.blob_to_dict(blob)
expected = dict(message, nested=[{'d': decimal.Decimal('1E+3')}, ['tuple', 1]])
assert back == expected, (back, expected)
print('[build_msgpack_ext] OK: msgpack %s uses %s (%s); C/pure-Python bytes identical; '
      'PySOA MsgpackSerializer round-trip OK' % (
          '.'.join(map(str, msgpack.version)), msgpack.Packer.__module__, _cmsgpack.__file__))
EOF

log "done in $(( $(date +%s) - START ))s"
