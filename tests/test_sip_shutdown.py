"""A pjsua2 Call object that outlives its worker's library must not abort the process.

Why: pjsua2's ``Call`` destructor calls ``pjsua_call_set_user_data``, which asserts the call id is below the
library's ``max_calls``; after ``libDestroy`` that is 0, so a Call object that something still held when the worker
stopped (a log record's traceback, a variable) aborted the whole process when it was finally freed. A CI run died
that way in pytest's teardown. The worker now disowns every Call object still alive before ``libDestroy``.
Run in a child process: an abort would take the test runner with it. Ports 25000-25019.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import asyncio, gc, socket, sys
    sys.path.insert(0, "tests")
    from sip_support import sip_config
    from voicebot.telephony.sip import SipWorker

    held = []

    async def main():
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a far end that never answers the INVITE
        silent.bind(("127.0.0.1", 25001))

        async def on_call(call):
            pass

        async with SipWorker(sip_config(25000), on_call, rtp_port=25002, rtp_port_range=10) as worker:
            dialing = asyncio.ensure_future(worker.dial("sip:nobody@127.0.0.1:25001", timeout_s=30))
            for _ in range(100):
                await asyncio.sleep(0.05)
                if len(worker._every_call):
                    break
            held.extend(worker._every_call)  # still calling when the worker stops
            assert held, "no Call object was made"
        dialing.cancel()
        await asyncio.gather(dialing, return_exceptions=True)
        silent.close()

    asyncio.run(main())
    n = len(held)
    held.clear()  # the last reference: the Call object is freed now, after libDestroy
    gc.collect()
    print(f"freed {n} call object(s) after the library was destroyed", flush=True)
""")


def test_a_call_object_freed_after_the_worker_stopped_does_not_abort_the_process():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert "freed 1 call object(s) after the library was destroyed" in done.stdout, done.stdout + done.stderr
