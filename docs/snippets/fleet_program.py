"""A generated server-side stub: the server asks the device that greeted it, typed end to end."""

import asyncio

from generated.fleet.v1 import fleet_goomerang as fleet
from generated.fleet.v1.fleet_pb2 import Echo, Hello, Light, NoSuchSensor, Probe, Reading, ReadSensor
from goomerang_runtime import Client, Server


# --8<-- [start:device]
class Device(fleet.DeviceBase):  # the client side: each sync method returns its reply
    async def read(self, request: ReadSensor, ctx: fleet.DeviceReadContext) -> fleet.DeviceReadReply:
        if request.sensor != "temp":
            return NoSuchSensor(sensor=request.sensor)
        ctx.reply_headers["unit"] = "C"
        return Reading(sensor="temp", value=21.5)

    async def ping(self, request: Probe, ctx: fleet.DevicePingContext) -> Echo:
        return Echo(sequence=request.sequence)

    async def blink(self, request: Light, ctx: fleet.DeviceBlinkContext) -> None:
        print("blinking", request.times, "times")


# --8<-- [end:device]


# --8<-- [start:fleet]
class Fleet(fleet.FleetBase):  # the server side
    def __init__(self) -> None:
        self.readings: asyncio.Queue[float] = asyncio.Queue()

    async def greet(self, request: Hello, ctx: fleet.FleetGreetContext) -> None:
        device = fleet.DeviceStub(ctx)  # bound to the client that greeted
        match await device.read(ReadSensor(sensor="temp"), timeout=2.0):  # Reading | NoSuchSensor
            case Reading(value=value):
                await self.readings.put(value)
            case NoSuchSensor(sensor=sensor):
                print(request.device, "has no sensor", sensor)


# --8<-- [end:fleet]


async def main() -> None:
    server = Server()
    service = Fleet()
    fleet.add_fleet(server, service)
    async with server:
        client = Client(server=server.addr)
        fleet.add_device(client, Device())
        async with client:
            await fleet.FleetStub(client).greet(Hello(device="d1"))
            value = await asyncio.wait_for(service.readings.get(), 2.0)
            print("d1 reads", value)
            assert value == 21.5
            # --8<-- [start:by-peer]
            [peer] = server.peers
            stub = fleet.DeviceStub(server, peer)  # or a connection id: DeviceStub(server, peer.id)
            echo = await stub.ping(Probe(sequence=7), timeout=2.0)  # Echo
            whole = await stub.read_with_reply(ReadSensor(sensor="temp"), timeout=2.0)
            print(echo.sequence, whole.headers["unit"])
            await fleet.DeviceSender(server).send(peer, Light(times=2))  # fire and forget
            # --8<-- [end:by-peer]
            assert echo.sequence == 7


asyncio.run(main())
