#!/usr/bin/env bash
# Create .venv with napari-uqseg and everything its tests, server and viewers need.
# torch: the CPU wheel by default (UQSEG_TORCH=torch==2.13.0); a GPU user installs their CUDA build
# of torch into .venv first or sets UQSEG_TORCH to the requirement they want.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"

# Qt/vispy need an X server for napari's GUI tests and a few shared libraries (Debian names).
if [ "$extras" = "dev" ] && ! command -v Xvfb >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      xvfb xauth herbstluftwm libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
      libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libegl1 libgl1 \
      libdbus-1-3 libfontconfig1 >/dev/null
  else
    echo "Xvfb is missing: install it (Debian: apt-get install xvfb xauth) or the GUI tests will fail" >&2
  fi
fi

# Orthanc with its DICOMweb plugin: the real PACS the DICOM tests start on a loopback port (tests/dicom).
if [ "$extras" = "dev" ] && ! command -v Orthanc >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends orthanc orthanc-dicomweb >/dev/null
  else
    echo "Orthanc is missing: install it (Debian: apt-get install orthanc orthanc-dicomweb) or the PACS tests skip" >&2
  fi
fi

python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install -q "${UQSEG_TORCH:-torch==2.13.0}"
python -m pip install -q -e ".[${extras}]"
echo "environment ready: . .venv/bin/activate"
