"""Ctrl-C and SIGTERM stop a server gracefully (issue 15.5): clients get 1000, the status reaches CLOSED."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as ws_connect

from generated.goomerang.example.messages_pb2 import MessageV1
from goomerang_runtime import Client, Message, Sender, Server, Status, graceful_exit

from .helpers import OUR_PEER, WAIT

ROOT = Path(__file__).resolve().parent.parent

# A server in its own process, as a user runs one: it prints its statuses (the address once RUNNING).
PROGRAM = """
import asyncio, signal, sys
from goomerang_runtime import Server, Status, graceful_exit

# Ctrl-C as in a terminal: a job that CI (or any shell script) started with & inherits SIGINT ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)

async def main(mode: str) -> None:
    server = Server(listen="127.0.0.1:0", heartbeat_interval=None)

    @server.on_status_change
    def status(status: Status) -> None:
        print("status", status.name, server.addr if status is Status.RUNNING else "", flush=True)

    if mode == "graceful_exit":
        with graceful_exit(server) as stop:
            await server.run()
        assert stop.signal is not None
        print("stopped by", stop.signal.name, flush=True)
    else:
        await server.run()

asyncio.run(main(sys.argv[1]))
"""


async def _serve(mode: str) -> tuple[asyncio.subprocess.Process, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PROGRAM, mode, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(WAIT):
            line = (await process.stdout.readline()).decode().split()
        assert line[:2] == ["status", "RUNNING"], line
    except BaseException:
        process.kill()
        await process.communicate()
        raise
    return process, line[2]


async def _stop(process: asyncio.subprocess.Process, sig: signal.Signals, addr: str) -> tuple[int, int | None, str]:
    """Send `sig` with a client connected: the process's exit status, the client's close code, what it printed."""
    try:
        async with ws_connect(f"ws://{addr}/ws", additional_headers=OUR_PEER) as ws:
            process.send_signal(sig)
            async with asyncio.timeout(WAIT):
                await ws.wait_closed()
            code = ws.close_code
        async with asyncio.timeout(WAIT):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:  # the test failed: no process (nor its transport) outlives it
            process.kill()
            await process.communicate()
    assert process.returncode is not None
    return process.returncode, code, out.decode() + err.decode()


async def test_ctrl_c_on_asyncio_run_server_run_shuts_down_gracefully() -> None:
    process, addr = await _serve("run")
    status, code, output = await _stop(process, signal.SIGINT, addr)
    assert code == 1000, output  # not 1011: the server closed its clients before the loop went away
    assert "status CLOSING" in output
    assert "status CLOSED" in output
    assert "KeyboardInterrupt" in output  # asyncio.run then goes on as with any Ctrl-C
    assert status in (-signal.SIGINT, 128 + signal.SIGINT, 1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_graceful_exit_stops_on_a_signal_and_exits_0(sig: signal.Signals) -> None:
    process, addr = await _serve("graceful_exit")
    status, code, output = await _stop(process, sig, addr)
    assert code == 1000, output
    assert status == 0, output  # not 143: SIGTERM is how a service manager asks a service to stop
    lines = output.splitlines()
    assert lines[-3:] == ["status CLOSING ", "status CLOSED ", f"stopped by {sig.name}"], output


async def test_a_cancelled_run_shuts_down_and_lets_handlers_finish() -> None:
    server = Server(heartbeat_interval=None)
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    @server.handler(MessageV1)
    async def slow(sender: Sender, msg: Message[MessageV1]) -> None:
        started.set()
        await release.wait()
        finished.append(msg.payload.message)

    statuses: list[Status] = []
    server.on_status_change(statuses.append)
    running = asyncio.Event()
    server.on_status_change(lambda status: running.set() if status is Status.RUNNING else None)
    serving = asyncio.create_task(server.run())
    async with asyncio.timeout(WAIT):
        await running.wait()
    raw = await ws_connect(server.url, additional_headers=OUR_PEER)
    client = Client(server=server.addr, heartbeat_interval=None)
    await client.connect()
    await client.send(MessageV1(message="in flight"))
    async with asyncio.timeout(WAIT):
        await started.wait()
    serving.cancel()
    async with asyncio.timeout(WAIT):
        await raw.wait_closed()  # clients are closed first, with 1000 ...
        assert raw.close_code == 1000
        assert server.status is Status.CLOSING  # ... then the handler in flight may finish
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await serving
        await client.wait_closed()
    assert finished == ["in flight"]
    assert statuses == [Status.RUNNING, Status.CLOSING, Status.CLOSED]


async def test_graceful_exit_closes_clients_too_and_puts_the_handlers_back() -> None:
    async with Server(heartbeat_interval=None) as server:
        client = Client(server=server.addr, heartbeat_interval=None)
        await client.connect()
        before = signal.getsignal(signal.SIGTERM)
        with graceful_exit(server, client, signals=[signal.SIGTERM]) as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            async with asyncio.timeout(WAIT):
                await server.wait_closed()
                await client.wait_closed()
                await stop.wait()
        assert stop.signal is signal.SIGTERM
        assert client.status is Status.CLOSED
        assert signal.getsignal(signal.SIGTERM) == before


async def test_graceful_exit_without_a_signal_changes_nothing() -> None:
    before = signal.getsignal(signal.SIGINT)
    async with Server(heartbeat_interval=None) as server:
        with graceful_exit(server) as stop:
            assert signal.getsignal(signal.SIGINT) != before  # caught while inside
        assert stop.signal is None
        assert server.status is Status.RUNNING
        assert signal.getsignal(signal.SIGINT) == before
        await stop.wait()
