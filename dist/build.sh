#!/usr/bin/env bash
# build.sh [OUT] cross-builds the static multilangd binaries and wraps them
# for distribution, into OUT (default dist/out, ignored by git):
#
#   bin/<os>_<arch>/multilangd                      linux and darwin, amd64 and arm64
#   multilangd_<version>_<os>_<arch>.tar.gz         the binary and README.md
#   multilangd-<version>-py3-none-<platform>.whl    pip install: multilangd on PATH
#   multilangd-<version>.tgz                        npm install: all four binaries and a launcher
#   SHA256SUMS                                      of everything above
#
# The container image is built from OUT with dist/Dockerfile. Nothing is
# downloaded or published. Builds are reproducible: the same commit gives
# the same bytes (CGO_ENABLED=0, -trimpath, no build id or VCS stamp,
# timestamps from the commit); dist/check.sh proves it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$root/dist/out}" && cd "${1:-$root/dist/out}" && pwd)
cd "$root"
GO=${GO:-go}
PYTHON=${PYTHON:-python3}

version=$(dist/version.sh go)
pyversion=$(dist/version.sh python)
pkgversion=$(dist/version.sh npm)
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 315532800)
export SOURCE_DATE_EPOCH
# PLATFORMS="linux_amd64 ..." builds a subset (the reproducibility test).
read -r -a platforms <<<"${PLATFORMS:-linux_amd64 linux_arm64 darwin_amd64 darwin_arm64}"

rm -rf "${out:?}"/*
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# 1. Binaries.
for p in "${platforms[@]}"; do
  CGO_ENABLED=0 GOOS=${p%_*} GOARCH=${p#*_} GOFLAGS=-mod=readonly \
    "$GO" build -trimpath -buildvcs=false \
    -ldflags "-s -w -buildid= -X main.version=$version" \
    -o "$out/bin/$p/multilangd" ./cmd/multilangd
done

# 2. Tarballs, one per platform.
for p in "${platforms[@]}"; do
  name=multilangd_${pkgversion}_$p
  mkdir -p "$stage/tar/$name"
  cp "$out/bin/$p/multilangd" README.md "$stage/tar/$name/"
  chmod 0755 "$stage/tar/$name/multilangd"
  chmod 0644 "$stage/tar/$name/README.md"
  tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    --format=gnu -C "$stage/tar" -cf - "$name" | gzip -6n >"$out/$name.tar.gz"
done

# 3. Python wheels, one per platform.
for p in "${platforms[@]}"; do
  "$PYTHON" dist/wheel.py --binary "$out/bin/$p/multilangd" --platform "$p" \
    --version "$pyversion" --out "$out" >/dev/null
done

# 4. npm package with every binary; bin/multilangd.js picks this platform's.
pkg=$stage/npm
mkdir -p "$pkg"
cp -R dist/npm/. "$pkg/"
for p in "${platforms[@]}"; do
  arch=${p#*_}
  [[ $arch == amd64 ]] && arch=x64
  mkdir -p "$pkg/vendor/${p%_*}-$arch"
  cp "$out/bin/$p/multilangd" "$pkg/vendor/${p%_*}-$arch/multilangd"
done
sed -i "s/\"version\": \"0.0.0-template\"/\"version\": \"$pkgversion\"/" "$pkg/package.json"
grep -q "\"version\": \"$pkgversion\"" "$pkg/package.json"
find "$pkg" -type d -exec chmod 0755 {} + && find "$pkg" -type f -exec chmod 0644 {} +
chmod 0755 "$pkg"/vendor/*/multilangd "$pkg/bin/multilangd.js"
(cd "$pkg" && npm pack --offline --loglevel=error --pack-destination "$out" >/dev/null)

# 5. Checksums and the listing.
cd "$out"
sha256sum bin/*/multilangd ./*.tar.gz ./*.whl ./*.tgz | sed 's#  \./#  #' >SHA256SUMS
echo "multilangd $version (python $pyversion, npm $pkgversion) in $out:"
while read -r sum file; do
  printf '%10s  %s  %s\n' "$(stat -c %s "$file")" "$sum" "$file"
done <SHA256SUMS
