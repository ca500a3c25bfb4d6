"""When and where a measurement was taken.

Every timing or score the docs quote carries this stamp: timings only compare within one machine, and the project
has been measured on more than one kind of 2-core laptop-class CPU.
"""

from __future__ import annotations

import os
import platform
import time


def describe_machine() -> str:
    """Cores, CPU model and memory, e.g. '2-core Intel(R) Xeon(R) Processor, 24 GiB'."""
    try:
        import psutil

        memory = f", {psutil.virtual_memory().total / 2**30:.0f} GiB"
    except ImportError:
        memory = ""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()}-core {model}{memory}"


def measurement_stamp() -> dict:
    """The UTC date and time and the machine, to put at the top of a result file."""
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": describe_machine()}
