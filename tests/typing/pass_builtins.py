"""rpcs named after builtins: the generated stub and base stay typed, and a subclass may name builtins after them."""

from __future__ import annotations

from typing import assert_type

import goomerang_runtime as rt
from generated.edge.builtins.v1 import builtins_goomerang as b
from generated.edge.builtins.v1.builtins_pb2 import (
    FloatRequest,
    ListRequest,
    PrintRequest,
    Reply,
    StrRequest,
    TypeRequest,
)


class Partial(b.BuiltinsBase):
    """Overrides of builtin-named rpcs, then annotations that name those builtins in the same class body."""

    async def list_(self, request: ListRequest, ctx: b.BuiltinsListContext) -> Reply:
        return Reply(text=",".join(self.names()))

    async def type_(self, request: TypeRequest, ctx: b.Context) -> Reply:
        return Reply(text=self.kind(str))

    async def float_(self, request: FloatRequest, ctx: b.Context) -> Reply:
        return Reply(text=str(self.half(1.0)))

    async def print(self, request: PrintRequest, ctx: b.Context) -> Reply:
        return Reply()

    def names(self) -> list[str]:
        return ["a"]

    def kind(self, cls: type[str]) -> str:
        return cls.__name__

    def half(self, x: float, headers: dict[str, int] | None = None) -> float:
        return x / 2


async def use(client: rt.Client) -> None:
    stub = b.BuiltinsStub(client)
    assert_type(await stub.float_(FloatRequest(), headers={"k": "v"}, timeout=1.5), Reply)
    assert_type(await stub.str_(StrRequest(), timeout=None), Reply)
    assert_type(await stub.list_(ListRequest()), Reply)
    assert_type(await stub.print(PrintRequest()), Reply)
    whole = await stub.type_with_reply(TypeRequest(), timeout=2)
    assert_type(whole, rt.Message[Reply])
