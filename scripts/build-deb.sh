#!/usr/bin/env bash
# Build the Debian 12 package of this checkout: dist/edgectl_<version>_<arch>.deb.
#
#   scripts/build-deb.sh [OUTDIR]        # OUTDIR defaults to dist/
#
# The package is self-contained: edgectl's wheel and the exact versions of its runtime
# dependencies (constraints.txt, what the tests ran) in a virtual environment under
# /opt/edgectl/venv, made here with Debian's /usr/bin/python3.11 - the interpreter the
# cabinet's python3.11 package provides at the same path - so installing it needs no network,
# no pip and no compiler: every file is in the .deb and owned by dpkg (dpkg -L, dpkg --verify,
# a clean purge). Debian's own python3-pydantic/pymodbus are too old to depend on.
# The alternative - shipping wheels and creating the venv in postinst - would run pip as root
# at install time, leave files dpkg does not know and fail half-way on a cabinet; it was not
# taken.
#
# The venv is built in a staging directory and moved into place by dpkg: the scripts'
# shebangs and pyvenv.cfg are rewritten to /opt/edgectl/venv, and the bytecode is compiled
# with the installed paths (unchecked-hash .pyc: the service runs with a read-only /opt and
# PYTHONDONTWRITEBYTECODE, so they must be there and valid; dpkg replaces them with the code).
#
# Needs: Debian 12 (python3.11, python3-venv; installed with apt when missing and root),
# dpkg-deb, and the dependencies' wheels (the package index pip is configured with, or its
# cache). The version is edgectl/__init__.py's __version__, the package's single version
# source. Packaging files: packaging/debian/. Runs as any user (dpkg-deb --root-owner-group).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${1:-$ROOT/dist}
PYTHON=/usr/bin/python3.11
PREFIX=/opt/edgectl/venv
umask 022
export PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1

die() {
    echo "build-deb: $*" >&2
    exit 1
}

if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "needs $PYTHON with venv (Debian 12: sudo apt-get install python3 python3-venv)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3 python3-venv >/dev/null
    "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || die "$PYTHON has no venv module"
fi
command -v dpkg-deb >/dev/null || die "dpkg-deb not found (a Debian system is needed)"

version=$(sed -n 's/^__version__ = "\([^"]*\)"$/\1/p' edgectl/__init__.py)
[ -n "$version" ] || die "no __version__ in edgectl/__init__.py"
# PEP 440 pre-releases sort before the release in dpkg only with a tilde: 0.2.0rc1 -> 0.2.0~rc1
debversion=$(printf '%s' "$version" | sed -E 's/\.?(a|b|rc|dev)([0-9]*)/~\1\2/g')
arch=$(dpkg --print-architecture)

work=$(mktemp -d "${TMPDIR:-/tmp}/edgectl-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/stage
venv=$stage$PREFIX

echo "build-deb: edgectl $version ($arch) with $("$PYTHON" -V)"

# 1. the wheel, and a pip to install it with (pip stays out of the package's venv)
"$PYTHON" -m venv "$work/tools"
"$work/tools/bin/python" -m pip wheel -q --no-deps -w "$work/wheel" "$ROOT"
wheel=$work/wheel/edgectl-$version-py3-none-any.whl
[ -f "$wheel" ] || die "pip wheel did not write $wheel: $(ls "$work/wheel")"

# 2. the venv: edgectl and the tested versions of its runtime dependencies, binary wheels only
"$PYTHON" -m venv --without-pip "$venv"
"$work/tools/bin/python" -m pip --python "$venv/bin/python" install -q --no-compile \
    --only-binary=:all: -c "$ROOT/constraints.txt" "$wheel"
rm -f "$venv"/lib/python3.*/site-packages/edgectl-*.dist-info/direct_url.json

# 3. moved into place by dpkg: no path of the staging directory may remain
for f in "$venv"/bin/* "$venv/pyvenv.cfg"; do
    if [ -f "$f" ] && [ ! -L "$f" ] && grep -Iq . "$f"; then
        sed -i "s#$stage##g" "$f"
    fi
done
if grep -rIl --exclude='RECORD' "$stage" "$venv" >"$work/leftover"; then
    die "staging paths left in: $(cat "$work/leftover")"
fi
head -1 "$venv/bin/edgectl" | grep -qx "#!$PREFIX/bin/python[0-9.]*" \
    || die "unexpected shebang: $(head -1 "$venv/bin/edgectl")"

# 4. the configuration skeleton (a conffile): what `edgectl init` writes
mkdir -p "$stage/etc/edgectl"
"$venv/bin/python" -c 'import sys
from edgectl.commands.init import render
sys.stdout.write(render(path="/etc/edgectl/edgectl.toml"))' >"$stage/etc/edgectl/edgectl.toml"
chmod 0640 "$stage/etc/edgectl/edgectl.toml"
chmod 0750 "$stage/etc/edgectl"

# 5. bytecode, naming the installed paths
"$venv/bin/python" -m compileall -q -j 0 --invalidation-mode unchecked-hash \
    -s "$stage" -p / "$venv/lib" >"$work/compileall.log" \
    || die "compileall failed: $(tail -20 "$work/compileall.log")"

# 6. the unit and its helpers (the same files as systemd/, docs/operations.md), the command
install -D -m 0644 systemd/edgectl.service "$stage/usr/lib/systemd/system/edgectl.service"
install -D -m 0644 systemd/edgectl.sysusers.conf "$stage/usr/lib/sysusers.d/edgectl.conf"
install -D -m 0644 systemd/edgectl.tmpfiles.conf "$stage/usr/lib/tmpfiles.d/edgectl.conf"
mkdir -p "$stage/usr/bin"
ln -s "$PREFIX/bin/edgectl" "$stage/usr/bin/edgectl"

# 7. docs (operations.md uncompressed: the unit's Documentation= names it)
doc=$stage/usr/share/doc/edgectl
install -D -m 0644 -t "$doc" README.md LICENSE docs/operations.md docs/configuration.md \
    docs/mqtt.md packaging/debian/copyright
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
{
    printf 'edgectl (%s) bookworm; urgency=medium\n\n' "$debversion"
    printf '  * Built from git %s by scripts/build-deb.sh.\n\n' "$commit"
    printf ' -- edgectl maintainers <edgectl@example.net>  %s\n' "$(date -R)"
} | gzip -9n >"$doc/changelog.Debian.gz"

# 8. control and maintainer scripts
mkdir -p "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$debversion/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$size/" \
    packaging/debian/control.in >"$stage/DEBIAN/control"
install -m 0644 packaging/debian/conffiles "$stage/DEBIAN/conffiles"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm \
    "$stage/DEBIAN/"

mkdir -p "$OUT"
deb=$OUT/edgectl_${debversion}_${arch}.deb
dpkg-deb --root-owner-group -Zxz -z6 --build "$stage" "$deb" >/dev/null
echo "build-deb: wrote $deb ($(du -h "$deb" | cut -f1))"
