#!/usr/bin/env bash
# scripts/deps.sh — installs the Debian packages unetcore builds against, only if some are
# missing (so a second run never touches apt). Sourced by run-main and run-tests.
set -euo pipefail

# libopenmpi-dev + openmpi-bin: optional for the library (CMake UNET_MPI=AUTO builds without MPI
# when it is missing), installed so that CI builds and tests the scale-out layer under mpirun.
# pybind11-dev, python3-dev, python3-numpy build the Python module (python/, -DUNET_PYTHON) and
# let it run.
UNET_DEB_PACKAGES=(cmake ninja-build g++ pkg-config libeigen3-dev catch2 libstb-dev libtiff-dev
                   libboost-context-dev libcli11-dev nlohmann-json3-dev libopenmpi-dev openmpi-bin
                   pybind11-dev python3-dev python3-numpy)

unet_install_deps() {
  local missing=()
  for p in "${UNET_DEB_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "[deps] all Debian packages present"
    return 0
  fi
  echo "[deps] installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "[deps] done"
}

# nvcc is used when present (kernels are also compiled for the GPU); the toolkit lives here.
if [ -d /usr/local/cuda/bin ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
