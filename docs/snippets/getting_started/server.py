"""app/server.py: the Greeter service on a goomerang server."""

import asyncio
import sys

from hello_gen.hello.v1 import hello_goomerang as hello
from hello_gen.hello.v1.hello_pb2 import Greeting, GreetRequest, Unknown

from goomerang_runtime import Server


class Greeter(hello.GreeterBase):
    async def greet(self, request: GreetRequest, ctx: hello.GreeterGreetContext) -> hello.GreeterGreetReply:
        if not request.name:
            return Unknown(name=request.name)
        return Greeting(text=f"hello, {request.name}")

    async def announce(self, request: Greeting, ctx: hello.Context) -> None:
        # Whatever a client announces goes to every subscriber of news.greetings.
        await hello.NewsTopic(ctx.server).publish("news.greetings", request)


def make_server(listen: str = "127.0.0.1:8080") -> Server:
    server = Server(listen=listen)
    hello.add_greeter(server, Greeter())  # a handler per rpc, and every kind they need
    return server


async def main(listen: str) -> None:
    server = make_server(listen)
    await server.start()
    print(f"listening on {server.addr}", flush=True)
    await server.wait_closed()  # until the process is stopped


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8080"))
