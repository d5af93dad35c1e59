"""Topic rules with NATS' semantics: Permissions as the authorisation hook."""

from goomerang_runtime import PeerInfo, Server

# --8<-- [start:permissions]
from goomerang_runtime.permissions import Permissions, TopicRules

perms = Permissions(
    subscribe=TopicRules(allow=["rooms.>"], deny=["rooms.private.>"]),
    publish=TopicRules(allow=["rooms.public.*"]),
    broadcast=False,
)
server = Server(authorize=perms)  # per principal: return PERMS[peer.principal](peer, action, topic, kind)
# --8<-- [end:permissions]

peer = PeerInfo("conn-1", "127.0.0.1:1")
print(perms(peer, "subscribe", "rooms.*", ""), perms(peer, "subscribe", "rooms.private.x", ""))
print(perms(peer, "publish", "rooms.public.go", ""), perms(peer, "broadcast", "", ""))
