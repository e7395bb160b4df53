#!/usr/bin/env bash
# Installs everything lorad needs on Debian 12 (apt + a Python venv with the
# PyTorch wheel's LibTorch), then configures and builds into build/.
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

APT_PKGS=(build-essential cmake ninja-build pkg-config git python3 python3-venv
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev prometheus-cpp-dev nlohmann-json3-dev libre2-dev libsqlite3-dev
  libssl-dev zlib1g-dev libgtest-dev libgmock-dev clang-format
  prometheus libcpp-httplib-dev libboost-dev openssl curl clang libclang-rt-14-dev)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# LibTorch comes from the PyTorch wheel (Debian's libtorch-dev 1.13 is too
# old). The peers used by tests and benchmarks come from PyPI too.
if [ ! -x .venv/bin/python ]; then
  PY=python3
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c 'import torch, transformers, peft, safetensors, tokenizers, bitsandbytes, trl, jsonschema, openai' 2>/dev/null; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r scripts/requirements.txt
fi

TORCH_PREFIX=$(.venv/bin/python -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
JOBS=${LORAD_JOBS:-$(( $(nproc) < 2 ? 1 : $(nproc) ))}
# Release at -O2 (the optimisation RelWithDebInfo has) without debug info:
# with LibTorch's headers, -g costs about a third of every compile and most
# of every link, and this build is most of the test command's time. For a
# debugger, configure another directory with -DCMAKE_BUILD_TYPE=RelWithDebInfo.
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" \
    -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" -DPython3_EXECUTABLE="$ROOT/.venv/bin/python"
fi
cmake --build build -j "$JOBS"
