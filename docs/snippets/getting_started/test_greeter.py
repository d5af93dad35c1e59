"""app/test_greeter.py: the service tested in memory, without a network."""

import pytest
from hello_gen.hello.v1 import hello_goomerang as hello
from hello_gen.hello.v1.hello_pb2 import Greeting, GreetRequest, Unknown
from server import make_server

from goomerang_runtime.testing import InMemory


@pytest.mark.asyncio
async def test_greet() -> None:
    async with InMemory(make_server()) as net, net.client() as client:
        stub = hello.GreeterStub(client)
        assert await stub.greet(GreetRequest(name="ana")) == Greeting(text="hello, ana")
        assert await stub.greet(GreetRequest()) == Unknown()


@pytest.mark.asyncio
async def test_announcements_reach_subscribers() -> None:
    async with InMemory(make_server()) as net, net.client() as client:
        stub = hello.GreeterStub(client)
        async with hello.NewsTopic(client).subscription("news.*") as news:
            await stub.greet(GreetRequest(name="sync"))  # answered: the subscription is in effect
            await stub.announce(Greeting(text="hi"))
            msg = await anext(news)
            assert (msg.metadata.topic, msg.payload.text) == ("news.greetings", "hi")
