#!/usr/bin/env bash
# advconv as a user installs it: the built wheel alone (with the demo extra) in a clean virtual
# environment outside the checkout, run from an empty folder, so that nothing of the checkout helps.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
"$repo/.venv/bin/python" -m pip wheel --no-deps --quiet -w "$work/wheel" "$repo"
python3 -m venv "$work/venv"
wheel=$(ls "$work"/wheel/advconv-*.whl)
"$work/venv/bin/python" -m pip install --quiet "$wheel[demo]" 2>&1 | grep -v "^WARNING: Location" || true
mkdir "$work/empty" && cd "$work/empty"
advconv="$work/venv/bin/advconv"
python="$work/venv/bin/python"

"$advconv" recipes
"$advconv" check --model stem8
sample=$("$python" -c "import advconv, pathlib; print(pathlib.Path(advconv.__file__).parent / 'samples' / 'cat.jpg')")
"$advconv" predict --model stem8.default "$sample"

# a tiny image folder: two classes of random 32x32 pictures
"$python" - <<'PY'
import numpy as np
from PIL import Image
rng = np.random.default_rng(0)
for split, count in (("train", 48), ("test", 8)):
    for cls, tint in (("red", 0), ("blue", 2)):
        for i in range(count):
            pixels = rng.integers(0, 120, (32, 32, 3), dtype=np.uint8)
            pixels[..., tint] += 120
            folder = f"tiny/{split}/{cls}"
            __import__("os").makedirs(folder, exist_ok=True)
            Image.fromarray(pixels).save(f"{folder}/{i}.png")
PY
"$advconv" train --config fast --data tiny --epochs 1 --batch_size 16 --run_dir run --no-progress
"$advconv" evaluate --model run --data tiny

# the page answers on this machine
port=$("$python" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
answers() {  # wait until a page answers at $1, up to two minutes
    for _ in $(seq 240); do
        "$python" -c "import urllib.request as u; u.urlopen('$1', timeout=2)" 2>/dev/null && return 0
        sleep 0.5
    done
    return 1
}
"$advconv" demo --model stem8.default --port "$port" > demo.log 2>&1 &
answers "http://127.0.0.1:$port/" || { cat demo.log; echo "advconv demo did not answer" >&2; exit 1; }
echo "advconv demo answered on 127.0.0.1:$port"
kill %1

# a Space folder, its requirements installed from the local wheel alone, its app.py driven in a browser
"$advconv" space stem8.default space
"$python" -m pip install --quiet --find-links "$work/wheel" -r space/requirements.txt 2>&1 | grep -v "^WARNING: Location" || true
port=$("$python" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
GRADIO_SERVER_NAME=127.0.0.1 GRADIO_SERVER_PORT=$port "$python" space/app.py > space.log 2>&1 &
answers "http://127.0.0.1:$port/" || { cat space.log; echo "the Space's app.py did not answer" >&2; exit 1; }
echo "the Space's app.py answered on 127.0.0.1:$port"
cd "$repo"
ADVCONV_SPACE_URL="http://127.0.0.1:$port/" .venv/bin/python -m pytest -q -p no:cacheprovider \
    tests/test_publish.py -k browser
