"""Server-to-client requests, with and without codegen, that mypy --strict and pyright strict must accept."""

from __future__ import annotations

from typing import assert_type

import goomerang_runtime as rt
from generated.fleet.v1 import fleet_goomerang as fleet
from generated.fleet.v1.fleet_pb2 import Echo, Hello, Light, NoSuchSensor, Probe, Reading, ReadSensor
from generated.goomerang.example.messages_pb2 import BadReplyV1, MessageV1, ReplyV1, SuccessReplyV1


class Device(fleet.DeviceBase):
    async def read(self, request: ReadSensor, ctx: fleet.DeviceReadContext) -> fleet.DeviceReadReply:
        assert_type(ctx.message.payload, ReadSensor)
        ctx.reply_headers["unit"] = "C"
        if request.sensor != "temp":
            return NoSuchSensor(sensor=request.sensor)
        return Reading(sensor=request.sensor, value=21.5)

    async def ping(self, request: Probe, ctx: fleet.DevicePingContext) -> Echo:  # a narrower return is fine
        await ctx.sender.send(Hello(device="d1"))  # a plain message to the server, never the reply
        return Echo(sequence=request.sequence)

    async def blink(self, request: Light, ctx: fleet.DeviceBlinkContext) -> None:
        pass


class Fleet(fleet.FleetBase):
    async def greet(self, request: Hello, ctx: fleet.FleetGreetContext) -> None:
        device = fleet.DeviceStub(ctx)  # bound to the client that greeted
        match await device.read(ReadSensor(sensor="temp"), timeout=2.0):
            case Reading(value=value):
                assert_type(value, float)
            case NoSuchSensor(sensor=sensor):
                assert_type(sensor, str)
        echo = await device.ping(Probe(sequence=1), timeout=2.0)
        assert_type(echo, Echo)
        whole = await device.read_with_reply(ReadSensor(sensor="temp"), headers={"k": "v"})
        assert_type(whole, rt.Message[Reading | NoSuchSensor])
        await fleet.DeviceSender(ctx.server).send(ctx.peer, Light(times=3))


async def answer(sender: rt.Sender, msg: rt.Message[MessageV1]) -> ReplyV1:
    return ReplyV1(message=msg.payload.message)


async def answer_with_headers(sender: rt.Sender, msg: rt.Message[SuccessReplyV1]) -> rt.Message[ReplyV1]:
    return rt.Message(ReplyV1(), {"k": "v"})


async def plain(sender: rt.Sender, msg: rt.Message[ReplyV1]) -> None:
    pass


async def use(server: rt.Server, client: rt.Client, peer: rt.PeerInfo, sender: rt.Sender) -> None:
    client.handle(MessageV1, answer)
    client.handle(SuccessReplyV1, answer_with_headers)
    client.handle(ReplyV1, plain)  # every handler is a responder that never answers
    fleet.add_device(client, Device())
    fleet.add_fleet(server, Fleet())
    one = await server.send_sync(peer, MessageV1(), expect=ReplyV1, timeout=1.0)
    assert_type(one, rt.Message[ReplyV1])
    either = await server.send_sync("conn-1", MessageV1(), expect=(SuccessReplyV1, BadReplyV1))
    assert_type(either, rt.Message[SuccessReplyV1 | BadReplyV1])
    if isinstance(either.payload, BadReplyV1):
        assert_type(either.payload.reason, str)
    three = await server.send_sync(sender, MessageV1(), expect=(SuccessReplyV1, BadReplyV1, ReplyV1))
    assert_type(three, rt.Message[SuccessReplyV1 | BadReplyV1 | ReplyV1])
    anything = await server.send_sync(peer, rt.Message(MessageV1(), {"k": "v"}))
    assert_type(anything, rt.Message[rt.ProtoMessage])
    stub = fleet.DeviceStub(server, peer)
    assert_type(stub.peer_id, str)
    assert_type(await fleet.DeviceStub(server, "conn-1").ping(Probe()), Echo)
    assert_type(await fleet.DeviceStub(server, sender).read(ReadSensor()), Reading | NoSuchSensor)
    assert_type(server.pending_sync, int)
