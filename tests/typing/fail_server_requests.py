"""Misuses of server-to-client requests that mypy --strict and pyright strict must reject, each on its marked line."""

from __future__ import annotations

import goomerang_runtime as rt
from generated.fleet.v1 import fleet_goomerang as fleet
from generated.fleet.v1.fleet_pb2 import Echo, Light, NoSuchSensor, Probe, Reading, ReadSensor
from generated.goomerang.example.messages_pb2 import BadReplyV1, MessageV1, ReplyV1, SuccessReplyV1


class WrongReplyType(fleet.DeviceBase):
    async def read(self, request: ReadSensor, ctx: fleet.DeviceReadContext) -> Echo:  # E: override  # P: reportIncompatibleMethodOverride
        return Echo()

    async def ping(self, request: Probe, ctx: fleet.DevicePingContext) -> Echo:
        return Echo()

    async def blink(self, request: Light, ctx: fleet.DeviceBlinkContext) -> None:
        pass


class ReturnsWrongValue(fleet.DeviceBase):
    async def read(self, request: ReadSensor, ctx: fleet.DeviceReadContext) -> fleet.DeviceReadReply:
        return Echo()  # E: return-value  # P: reportReturnType

    async def ping(self, request: Probe, ctx: fleet.DevicePingContext) -> Echo:
        return Reading()  # E: return-value  # P: reportReturnType

    async def blink(self, request: Light, ctx: fleet.DeviceBlinkContext) -> None:
        pass


class NoReply(fleet.DeviceBase):
    async def read(self, request: ReadSensor, ctx: fleet.DeviceReadContext) -> None:  # E: override  # P: reportIncompatibleMethodOverride
        pass

    async def ping(self, request: Probe, ctx: fleet.DevicePingContext) -> Echo:
        ctx.reply_headers["k"] = 1  # E: assignment  # P: reportArgumentType
        return Echo()

    async def blink(self, request: Light, ctx: fleet.DeviceBlinkContext) -> None:
        ctx.reply_headers["k"] = "v"  # E: attr-defined  # P: reportAttributeAccessIssue, reportUnknownMemberType


async def answers_nonsense(sender: rt.Sender, msg: rt.Message[MessageV1]) -> int:
    return 1


async def answers_other_kind(sender: rt.Sender, msg: rt.Message[ReplyV1]) -> ReplyV1:
    return ReplyV1()


async def misuse(server: rt.Server, client: rt.Client, ctx: fleet.Context) -> None:
    client.handle(MessageV1, answers_nonsense)  # E: arg-type  # P: reportArgumentType
    client.handle(MessageV1, answers_other_kind)  # E: arg-type  # P: reportArgumentType
    device = fleet.DeviceStub(ctx)
    await device.read(Probe())  # E: arg-type  # P: reportArgumentType
    await device.blink(Light())  # E: attr-defined  # P: reportAttributeAccessIssue, reportUnknownMemberType
    reading = await device.read(ReadSensor())
    print(reading.value)  # E: union-attr  # P: reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownArgumentType
    whole = await device.read_with_reply(ReadSensor())
    print(whole.payload.value)  # E: union-attr  # P: reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownArgumentType
    await device.ping(Probe(), timeout="soon")  # E: arg-type  # P: reportArgumentType
    fleet.DeviceStub(client, "conn-1")  # E: call-overload  # P: reportArgumentType
    fleet.DeviceStub(server)  # E: call-overload  # P: reportArgumentType
    either = await server.send_sync("conn-1", MessageV1(), expect=(SuccessReplyV1, BadReplyV1))
    print(either.payload.reason)  # E: union-attr  # P: reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownArgumentType
    one = await server.send_sync("conn-1", MessageV1(), expect=NoSuchSensor)
    print(one.payload.value)  # E: attr-defined  # P: reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownArgumentType
    await server.send_sync(42, MessageV1())  # E: call-overload  # P: reportArgumentType
