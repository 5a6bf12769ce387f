#!/usr/bin/env python3
"""Build a platform wheel that carries the static multilangd binary.

    wheel.py --binary PATH --platform linux_amd64 --version 1.2.0 --out DIR

Standard library only (no PyPI at build time). The wheel follows the binary
distribution format (PEP 427/491) the way ruff's wheels do: the binary is a
"script" in multilangd-<version>.data/scripts/, which pip installs into the
environment's bin directory, so `multilangd` is on PATH in an activated
virtual environment. A small `multilangd` package adds `python -m multilangd`
and `multilangd.find_binary()`.

Reproducible: entries are sorted, timestamps come from SOURCE_DATE_EPOCH,
permissions are fixed.
"""

import argparse
import base64
import hashlib
import os
import sys
import time
import zipfile

NAME = "multilangd"
SUMMARY = "KCL MultiLangDaemon replacement: one static binary, no JVM, no jars"

# Go's GOOS_GOARCH -> wheel platform tags. A static Linux binary runs on
# glibc and musl alike; Go 1.25+ needs macOS 12.
PLATFORM_TAGS = {
    "linux_amd64": ["manylinux_2_17_x86_64", "manylinux2014_x86_64", "musllinux_1_1_x86_64"],
    "linux_arm64": ["manylinux_2_17_aarch64", "manylinux2014_aarch64", "musllinux_1_1_aarch64"],
    "darwin_amd64": ["macosx_12_0_x86_64"],
    "darwin_arm64": ["macosx_12_0_arm64"],
}

INIT_PY = '''"""multilangd: the KCL MultiLangDaemon replacement, as a static binary.

The wheel installs the `multilangd` executable into the environment's
scripts directory (bin/ of a virtual environment). Point the KCL launchers
at it: amazon_kclpy_helper.py --print_command --java "$(which multilangd)" ...
"""

import os
import sys
import sysconfig


def find_binary():
    """Return the path of the installed multilangd executable."""
    exe = "multilangd" + (sysconfig.get_config_var("EXE") or "")
    candidates = [os.path.join(sysconfig.get_path("scripts"), exe)]
    user_scheme = sysconfig.get_preferred_scheme("user") if hasattr(sysconfig, "get_preferred_scheme") else None
    if user_scheme:
        candidates.append(os.path.join(sysconfig.get_path("scripts", scheme=user_scheme), exe))
    candidates.append(os.path.join(os.path.dirname(sys.executable), exe))
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise FileNotFoundError("multilangd executable not found in " + ", ".join(candidates))
'''

MAIN_PY = '''import os
import sys

from multilangd import find_binary


def main():
    binary = find_binary()
    os.execv(binary, [binary] + sys.argv[1:])


if __name__ == "__main__":
    main()
'''

DESCRIPTION = """# multilangd

One static binary that replaces the Java KCL MultiLangDaemon: same `.properties`
file, same DynamoDB lease table, same record-processor protocol, so amazon_kclpy
processors run unchanged without a JVM or Maven jars.

    pip install multilangd amazon_kclpy
    multilangd validate -p app.properties
    multilangd --properties-file app.properties

Existing launch scripts keep working: point amazon_kclpy_helper.py's `--java` at
`multilangd`.
"""


def record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def zip_info(name, mode, epoch):
    # Zip timestamps cannot precede 1980.
    stamp = time.gmtime(max(epoch, 315532800))[:6]
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so external_attr carries the mode
    info.external_attr = (0o100000 | mode) << 16
    return info


def build(binary, platform, version, out_dir, epoch):
    tags = PLATFORM_TAGS[platform]
    dist = NAME + "-" + version
    dist_info = dist + ".dist-info"
    with open(binary, "rb") as f:
        binary_data = f.read()
    files = {  # name -> (data, mode)
        NAME + "/__init__.py": (INIT_PY.encode(), 0o644),
        NAME + "/__main__.py": (MAIN_PY.encode(), 0o644),
        dist + ".data/scripts/" + NAME: (binary_data, 0o755),
        dist_info + "/METADATA": ("\n".join([
            "Metadata-Version: 2.1",
            "Name: " + NAME,
            "Version: " + version,
            "Summary: " + SUMMARY,
            "Requires-Python: >=3.7",
            "Description-Content-Type: text/markdown",
            "",
            DESCRIPTION,
        ]).encode(), 0o644),
        dist_info + "/WHEEL": (("\n".join(
            ["Wheel-Version: 1.0", "Generator: multilangd dist/wheel.py", "Root-Is-Purelib: false"]
            + ["Tag: py3-none-" + t for t in tags]) + "\n").encode(), 0o644),
    }
    record_name = dist_info + "/RECORD"
    lines = ["%s,%s,%d" % (n, record_hash(d), len(d)) for n, (d, _) in sorted(files.items())]
    lines.append(record_name + ",,")
    files[record_name] = (("\n".join(lines) + "\n").encode(), 0o644)

    wheel_name = "%s-py3-none-%s.whl" % (dist, ".".join(tags))
    path = os.path.join(out_dir, wheel_name)
    # dist-info last, RECORD at the very end, as installers expect.
    order = sorted(n for n in files if not n.startswith(dist_info)) + \
        sorted(n for n in files if n.startswith(dist_info) and n != record_name) + [record_name]
    with zipfile.ZipFile(path, "w") as zf:
        for name in order:
            data, mode = files[name]
            zf.writestr(zip_info(name, mode, epoch), data, compresslevel=6)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--platform", required=True, choices=sorted(PLATFORM_TAGS))
    ap.add_argument("--version", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    print(build(args.binary, args.platform, args.version, args.out, epoch))


if __name__ == "__main__":
    sys.exit(main())
