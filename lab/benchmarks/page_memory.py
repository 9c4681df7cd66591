"""The demo page's memory under the largest images it accepts (issue 50), in fresh processes.

    python lab/benchmarks/page_memory.py > lab/benchmarks/results/page_memory.txt

One request of 16 uploads (the page's most) of the largest image accepted (``MAX_PIXELS``, in a
file under the page's 10 MB),
as a PNG (decoded whole) and as a JPEG (decoded reduced), through the page's own function
(``page.demo.classify``, Grad-CAM on), and one upload of an 11000x11000 PNG (refused in one
line). Peak resident memory of each process, against the same process with the page loaded
and nothing uploaded.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = '''
import resource, sys
from advconv.page.demo import MAX_FILES, classify, load_demo
demo = load_demo("stem8.default")
classify(demo, [sys.argv[1]], 3, True, "c4", 0.5)  # warm: every module and buffer in place
idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
gallery, text = classify(demo, [sys.argv[2]] * MAX_FILES, 3, True, "c4", 0.5)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{idle:.0f} {peak:.0f} {len(gallery)} {text.splitlines()[-1][:120]!r}")
'''


def main() -> None:
    from PIL import Image

    from advconv.data.datasets import MAX_PIXELS

    side = int(MAX_PIXELS ** 0.5)
    folder = Path(tempfile.mkdtemp())
    small = folder / "small.png"
    Image.new("RGB", (32, 32), (10, 200, 10)).save(small)
    cases = {}
    for fmt in ("png", "jpg"):
        path = folder / f"largest.{fmt}"
        gradient = Image.linear_gradient("L").resize((side, side))  # smooth: it fits the page's 10 MB per file
        Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_90), gradient)).save(path)
        cases[f"16 x {side}x{side} {fmt.upper()} ({path.stat().st_size / 2 ** 20:.0f} MB)"] = path
    bomb = folder / "bomb.png"
    Image.new("RGB", (11000, 11000)).save(bomb)
    cases[f"1 x 11000x11000 PNG ({bomb.stat().st_size / 2 ** 10:.0f} KB), refused"] = bomb
    print(f"MAX_PIXELS {MAX_PIXELS:,} ({side}x{side})")
    for label, path in cases.items():
        out = subprocess.run([sys.executable, "-c", CHILD, str(small), str(path)], capture_output=True, text=True,
                             check=True).stdout.split(maxsplit=3)
        print(f"{label}: page loaded {out[0]} MB, peak {out[1]} MB (+{int(out[1]) - int(out[0])} MB), "
              f"{out[2]} images shown; last line {out[3].strip()}")


if __name__ == "__main__":
    main()
