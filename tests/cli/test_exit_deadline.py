"""A stop never needs a second signal: if closing up after the services hangs, the
process prints every thread's stack and exits 1 by a deadline (``run_services``).

The program below runs one service that stops on SIGTERM, then leaves a non-daemon
thread that never ends, which would keep the interpreter from exiting for ever.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

HANG_GUARD = 120  # seconds; the deadline in the program is under 2 s

PROGRAM = textwrap.dedent(
    """
    import asyncio, threading
    from cadenza.cli import process

    process.STOP_MARGIN, process.EXIT_MARGIN = 0.1, 1.0

    class Idle:
        def __init__(self) -> None:
            self.stopped = asyncio.Event()
        async def run(self) -> None:
            print("ready", flush=True)
            await self.stopped.wait()
        def stop(self) -> None:
            self.stopped.set()

    async def main() -> None:
        await process.run_services({"idle": Idle()}, grace=0.5)

    asyncio.run(main())
    print("services stopped", flush=True)
    threading.Thread(target=threading.Event().wait, name="never-ends").start()
    """
)


def test_a_hang_after_the_services_stop_ends_in_a_stack_dump_and_exit_1() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", PROGRAM],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=HANG_GUARD)
    finally:
        child.kill()
    assert "services stopped" in out
    assert child.returncode == 1, err
    # faulthandler's dump: the deadline, then every thread's stack
    assert "Timeout" in err, err
    assert "File " in err, err
