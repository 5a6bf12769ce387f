#!/usr/bin/env bash
# version.sh [go|python|npm] prints the version of this checkout, from git:
#   go      the `multilangd version` string: `git describe` of the newest v* tag,
#           e.g. v1.2.0, v1.2.0-3-g1a2b3c4d5e6f, v1.2.0-dirty; without a tag
#           v0.0.0-<commits>-g<hash>
#   python  PEP 440: 1.2.0, or 1.2.1.dev3+g1a2b3c4d5e6f[.dirty] after a tag
#   npm     semver:  1.2.0, or 1.2.1-dev.3.g1a2b3c4d5e6f[.dirty] after a tag
# MULTILANGD_VERSION=vX.Y.Z overrides git (a build from a source tarball).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-go}
desc=${MULTILANGD_VERSION:-}
if [[ -z $desc ]]; then
  desc=$(git describe --tags --match 'v[0-9]*' --abbrev=12 --dirty 2>/dev/null || true)
fi
if [[ -z $desc ]]; then
  dirty=$(git diff --quiet HEAD -- 2>/dev/null || echo -dirty)
  desc="v0.0.0-$(git rev-list --count HEAD)-g$(git rev-parse --short=12 HEAD)$dirty"
fi
re='^v([0-9]+)\.([0-9]+)\.([0-9]+)(-([0-9]+)-g([0-9a-f]+))?(-dirty)?$'
if [[ ! $desc =~ $re ]]; then
  echo "version.sh: cannot parse version $desc (want vX.Y.Z[-N-gHASH][-dirty])" >&2
  exit 1
fi
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]} patch=${BASH_REMATCH[3]}
distance=${BASH_REMATCH[5]:-0} hash=${BASH_REMATCH[6]:-} dirty=${BASH_REMATCH[7]:-}
case $kind in
  go) echo "$desc" ;;
  python|npm)
    if [[ $distance == 0 && -z $dirty ]]; then
      echo "$major.$minor.$patch"
      exit 0
    fi
    next="$major.$minor.$((patch + 1))"
    [[ -n $hash ]] || hash=$(git rev-parse --short=12 HEAD)
    local_part="g$hash${dirty:+.dirty}"
    if [[ $kind == python ]]; then
      echo "$next.dev$distance+$local_part"
    else
      echo "$next-dev.$distance.$local_part"
    fi
    ;;
  *) echo "usage: $0 [go|python|npm]" >&2; exit 2 ;;
esac
