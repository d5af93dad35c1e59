"""app/client.py: call the Greeter, then follow the news topic as an async iterator."""

import asyncio
import sys

from hello_gen.hello.v1 import hello_goomerang as hello
from hello_gen.hello.v1.hello_pb2 import Greeting, GreetRequest, Unknown

from goomerang_runtime import Client


async def main(server: str) -> None:
    async with Client(server=server) as client:
        stub = hello.GreeterStub(client)
        match await stub.greet(GreetRequest(name="ana"), timeout=2.0):  # Greeting | Unknown
            case Greeting(text=text):
                print(text)
            case Unknown(name=name):
                print("who is", repr(name))

        async with hello.NewsTopic(client).subscription("news.*") as news:
            await stub.greet(GreetRequest(name="sync"), timeout=2.0)  # answered: the subscription is in effect
            await stub.announce(Greeting(text="ana is here"))
            async for msg in news:  # msg: Message[Greeting]
                print(f"{msg.metadata.topic}: {msg.payload.text}")
                break


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8080"))
