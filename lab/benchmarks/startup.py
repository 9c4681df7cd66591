"""How long advconv takes to start, against torch's own import, measured in one run.

    python lab/benchmarks/startup.py > lab/benchmarks/results/startup.txt

Each figure is the median of 5 fresh interpreters: `import torch`, `import advconv` and its
first public name (which loads torch and the API), `advconv --help`, and `advconv train --help`.
"""

import statistics
import subprocess
import sys
import time
from pathlib import Path

ADVCONV = str(Path(sys.executable).parent / "advconv")
CASES = {
    "import torch": [sys.executable, "-c", "import torch"],
    "import advconv; advconv.fit": [sys.executable, "-c", "import advconv; advconv.fit"],
    "advconv --help": [ADVCONV, "--help"],
    "advconv train --help": [ADVCONV, "train", "--help"],
}


def seconds(command: list[str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    measured = {name: seconds(command) for name, command in CASES.items()}
    for name, value in measured.items():
        print(f"{name:<32} {value:6.2f} s")
    extra = measured["import advconv; advconv.fit"] - measured["import torch"]
    print(f"advconv's own cost over torch's: {extra:.2f} s")
