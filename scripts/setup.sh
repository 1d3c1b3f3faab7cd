#!/usr/bin/env bash
# Idempotent set-up of everything para_ros needs on a fresh Debian/Ubuntu machine:
#   * system libraries (only what the chosen extras need; apt, when run as root or with sudo),
#   * a virtual environment in .venv (Python 3.10-3.12; PARA_PYTHON picks the interpreter),
#   * `pip install -e .[extras]`, which also compiles the ROS 2 messages in msg/ (setup.py).
# A stamp records what was installed; an unchanged tree and extras skip every step (< 1 s).
#
#   PARA_EXTRAS   comma list of pyproject extras (default: cpu,dev,train,sim); `gpu` replaces
#                 `cpu`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
EXTRAS=${PARA_EXTRAS:-cpu,dev,train,sim}
VENV=${PARA_VENV:-$ROOT/.venv}
PY=${PARA_PYTHON:-python3}

say() { printf '[setup] %s\n' "$*" >&2; }

if [[ ",$EXTRAS," == *",gpu,"* && ",$EXTRAS," == *",cpu,"* ]]; then
  say "PARA_EXTRAS has both cpu and gpu: onnxruntime and onnxruntime-gpu are the same module; pick one"
  exit 2
fi

# -- system packages -----------------------------------------------------------------------
apt_pkgs=()
if [[ ",$EXTRAS," == *",sim,"* ]]; then
  # MuJoCo headless rendering: EGL through Mesa's software drivers (MUJOCO_GL=egl, the
  # default), OSMesa as the fallback (MUJOCO_GL=osmesa).
  apt_pkgs+=(libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libosmesa6)
fi
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  say "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# -- virtual environment -------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating $VENV with $($PY --version 2>&1)"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>/dev/null
fi

# onnxruntime and onnxruntime-gpu are one Python module: a venv set up with `gpu` keeps it
# when a later call (scripts/run.sh, scripts/test.sh, make) asks for the default `cpu`.
if [[ ",$EXTRAS," == *",cpu,"* ]] \
    && compgen -G "$VENV/lib/python3*/site-packages/onnxruntime_gpu-*.dist-info" >/dev/null; then
  EXTRAS=$(echo ",$EXTRAS," | sed 's/,cpu,/,gpu,/; s/^,//; s/,$//')
  say "onnxruntime-gpu is installed in $VENV: keeping it (extras $EXTRAS)"
fi

stamp_inputs() {
  echo "$EXTRAS"
  cat pyproject.toml setup.py CMakeLists.txt cmake/*.cmake package.xml msg/*.msg \
    interfaces/*/package.xml interfaces/*/CMakeLists.txt interfaces/*/msg/*.msg
}
want=$(stamp_inputs | sha256sum | cut -d' ' -f1)
stamp="$VENV/.para_ros_setup"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f para_ros/msg/__init__.py ]]; then
  exit 0
fi

say "pip install -e .[$EXTRAS] (builds the ROS 2 messages)"
start=$(date +%s)
log="$VENV/pip-install.log"
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -e ".[$EXTRAS]" >"$log" 2>&1; then
  tail -n 60 "$log" >&2
  say "pip install failed; full log: $log"
  exit 1
fi
"$VENV/bin/python" -c "from para_ros.msg import PolicyAction, EpisodeStatus" \
  || { say "message import failed after install"; exit 1; }
"$VENV/bin/python" -c "from tf2_msgs.msg import TFMessage" \
  || { say "tf2_msgs import failed after install (neither bundled nor from a ROS install)"; exit 1; }
echo "$want" > "$stamp"
say "done in $(( $(date +%s) - start )) s"
