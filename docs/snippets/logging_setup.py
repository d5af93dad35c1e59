"""The library's own log records: connections, disconnections, reconnections, refusals."""

import asyncio
import logging

from goomerang_runtime import Client, Server


# --8<-- [start:logging]
class WithPeer(logging.Formatter):
    """Shows the structured extras the library puts on its records."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {key: record.__dict__[key] for key in ("peer", "address") if key in record.__dict__}
        return f"{line} {extras}" if extras else line


handler = logging.StreamHandler()
handler.setFormatter(WithPeer("%(levelname)s %(name)s: %(message)s"))
logging.getLogger("goomerang").addHandler(handler)
logging.getLogger("goomerang").setLevel(logging.INFO)  # DEBUG adds failed connection attempts
# --8<-- [end:logging]


async def main() -> None:
    async with Server() as server, Client(server=server.addr):
        pass


asyncio.run(main())
