'use strict';
// multilangd for Node.js: the static binaries for linux and darwin on x64 and
// arm64 are inside this package (vendor/<platform>-<arch>/multilangd);
// nothing is downloaded at install or run time.
//
//   const { binaryPath } = require('multilangd');
//   // kcl-bootstrap --java "$(node -p "require('multilangd').binaryPath")" -p app.properties -e

const fs = require('fs');
const path = require('path');

function binaryPathFor(platform, arch) {
  const p = path.join(__dirname, 'vendor', `${platform}-${arch}`, 'multilangd');
  if (!fs.existsSync(p)) {
    const have = fs.readdirSync(path.join(__dirname, 'vendor')).join(', ');
    throw new Error(`multilangd has no binary for ${platform}-${arch} (this package carries: ${have})`);
  }
  // npm may unpack files without their executable bit.
  try {
    fs.accessSync(p, fs.constants.X_OK);
  } catch (e) {
    fs.chmodSync(p, 0o755);
  }
  return p;
}

module.exports = {
  binaryPathFor,
  get binaryPath() {
    return binaryPathFor(process.platform, process.arch);
  },
};
