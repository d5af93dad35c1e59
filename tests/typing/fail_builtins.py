"""Misuses around rpcs named after builtins, still reported (a shadowed `float` or `str` would hide them)."""

from __future__ import annotations

import goomerang_runtime as rt
from generated.edge.builtins.v1 import builtins_goomerang as b
from generated.edge.builtins.v1.builtins_pb2 import FloatRequest, IntRequest, Reply, StrRequest


class Wrong(b.BuiltinsBase):
    async def int_(self, request: IntRequest, ctx: b.Context) -> int:  # E: override  # P: reportIncompatibleMethodOverride
        return 1


async def misuse(client: rt.Client) -> None:
    stub = b.BuiltinsStub(client)
    await stub.float_(FloatRequest(), timeout="soon")  # E: arg-type  # P: reportArgumentType
    await stub.str_(StrRequest(), headers={"k": 1})  # E: dict-item  # P: reportArgumentType
    await stub.int_(FloatRequest())  # E: arg-type  # P: reportArgumentType
    reply: int = await stub.float_(FloatRequest())  # E: assignment  # P: reportAssignmentType
    print(reply, Reply)
