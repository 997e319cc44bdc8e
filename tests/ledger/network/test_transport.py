"""The transport on real sockets (loopback, free ports): mesh, refusals, tampering,
restarts, back-pressure, validator-set changes, simultaneous dials, size limits."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from coincurve import PrivateKey

from evm_runtime.types import Address
from ledger.network import PayloadTooLarge, Transport, TransportConfig
from ledger.network import frames as frame_rules
from ledger.network import handshake as rules
from ledger.network.frames import Kind
from tests.ledger.network.support import (
    CHAIN_ID,
    FAST,
    LOOPBACK,
    Gate,
    KeySigner,
    LyingSigner,
    Node,
    Proxy,
    RawLink,
    dead_endpoint,
    eventually,
    fully_connected,
    holds,
    make_node,
    raw_dial,
    run,
    start_mesh,
    stop_all,
)


def test_four_validators_form_a_mesh_and_broadcast() -> None:
    async def scenario() -> None:
        nodes = await start_mesh(4)
        try:
            await eventually(fully_connected(nodes), what="a full mesh")
            for node in nodes:
                assert node.transport.broadcast(b"from " + node.address) == 3
            for node in nodes:
                others = [other for other in nodes if other is not node]
                await eventually(lambda node=node: len(node.inbox) == 3, what="three broadcasts")
                assert sorted(node.inbox) == sorted((o.address, b"from " + o.address) for o in others)

            a, b = nodes[0], nodes[1]
            assert a.transport.send(b.address, b"just for b")
            await eventually(lambda: b.received(a.address)[-1:] == [b"just for b"])
            assert all(b"just for b" not in node.received() for node in nodes[2:])

            # One connection per pair, and both ends agree on which.
            for node in nodes:
                stats = node.transport.stats()
                for other in nodes:
                    if other is node:
                        continue
                    theirs = other.transport.stats().peers[node.address]
                    assert stats.peers[other.address].dialled_by == theirs.dialled_by
                assert stats.refused == {}
                assert sum(peer.frames_sent for peer in stats.peers.values()) >= 3
        finally:
            await stop_all(nodes)

    run(scenario())


def test_frames_from_one_peer_arrive_in_order() -> None:
    async def scenario() -> None:
        a, b = await start_mesh(2)
        try:
            await eventually(fully_connected([a, b]))
            for i in range(500):
                a.transport.send(b.address, i.to_bytes(4, "big"))
            await eventually(lambda: len(b.inbox) == 500)
            assert [int.from_bytes(payload, "big") for payload in b.received()] == list(range(500))
            assert a.transport.stats().peers[b.address].frames_sent == 500
            assert b.transport.stats().peers[a.address].frames_received == 500
        finally:
            await stop_all([a, b])

    run(scenario())


def test_a_node_outside_the_validator_set_is_refused() -> None:
    async def scenario() -> None:
        a, b = await start_mesh(2)
        outsider = make_node(KeySigner.numbered(99), {a.address: a.endpoint, b.address: b.endpoint})
        await outsider.transport.start()
        try:
            await eventually(fully_connected([a, b]))
            outsider.transport.broadcast(b"let me in")
            await eventually(
                lambda: (
                    a.transport.stats().refused.get(rules.NOT_VALIDATOR, 0) >= 2
                    and b.transport.stats().refused.get(rules.NOT_VALIDATOR, 0) >= 2
                ),
                what="repeated refusals",
            )
            assert outsider.transport.connected_peers == frozenset()
            assert outsider.address not in a.transport.connected_peers | b.transport.connected_peers
            assert a.transport.send(outsider.address, b"no") is False
            assert a.inbox == b.inbox == []
            assert outsider.transport.stats().peers[a.address].frames_sent == 0
        finally:
            await stop_all([a, b, outsider])

    run(scenario())


@pytest.mark.parametrize("impostor_role", ["dialer", "acceptor"])
def test_a_key_that_is_not_the_validators_is_refused(impostor_role: str) -> None:
    """A host claiming validator V's address without V's key, whichever end it is."""
    real_v = KeySigner.numbered(2)

    async def scenario() -> None:
        a = make_node(KeySigner.numbered(1))
        impostor = make_node(LyingSigner(PrivateKey(), claimed=real_v.address))
        await a.transport.start()
        await impostor.transport.start()
        try:
            if impostor_role == "dialer":  # a knows V elsewhere (down); the impostor dials a
                a.transport.update_peers({real_v.address: dead_endpoint()})
                impostor.transport.update_peers({a.address: a.endpoint})
            else:  # a dials V's endpoint, where the impostor listens; the impostor dials no one
                a.transport.update_peers({real_v.address: impostor.endpoint})
                impostor.transport.update_peers({a.address: dead_endpoint()})
            impostor.transport.send(a.address, b"trust me")
            a.transport.send(real_v.address, b"for v only")
            await eventually(
                lambda: a.transport.stats().refused.get(rules.BAD_SIGNATURE, 0) >= 2, what="refusals"
            )
            assert a.transport.connected_peers == frozenset()
            assert a.inbox == [] and impostor.inbox == []
            assert a.transport.stats().peers[real_v.address].frames_sent == 0
        finally:
            await stop_all([a, impostor])

    run(scenario())


@pytest.mark.parametrize(
    ("mode", "reason"), [("flip", frame_rules.BAD_TAG), ("replay", frame_rules.BAD_SEQUENCE)]
)
def test_a_tampered_or_replayed_frame_is_dropped_and_the_connection_renewed(mode: str, reason: str) -> None:
    quiet = dataclasses.replace(FAST, heartbeat_interval=5.0, idle_timeout=20.0)

    async def scenario() -> None:
        a = make_node(KeySigner.numbered(1), config=quiet)
        b = make_node(KeySigner.numbered(2), config=quiet)
        await a.transport.start()
        await b.transport.start()
        proxy = Proxy(a.endpoint)
        via_proxy = await proxy.start()
        # b reaches a only through the proxy; a cannot reach b (so b's dial is the connection).
        a.transport.update_peers({b.address: dead_endpoint()})
        b.transport.update_peers({a.address: via_proxy})
        try:
            await eventually(fully_connected([a, b]))
            b.transport.send(a.address, b"before" * 50)
            await eventually(lambda: a.received() == [b"before" * 50])

            proxy.tamper = mode
            b.transport.send(a.address, b"tampered" * 50)
            await eventually(lambda: a.transport.stats().peers[b.address].frames_refused == 1)
            assert proxy.tampered == 1
            assert a.transport.stats().peers[b.address].refusals == {reason: 1}

            await eventually(fully_connected([a, b]), what="a new connection")
            b.transport.send(a.address, b"after" * 50)
            await eventually(lambda: a.received()[-1:] == [b"after" * 50])
            expected = [b"before" * 50, b"tampered" * 50, b"after" * 50] if mode == "replay" else None
            if expected is not None:  # the original arrived once; its replay was refused
                assert a.received() == expected
            else:
                assert a.received() == [b"before" * 50, b"after" * 50]
            assert proxy.connections == 2
        finally:
            await stop_all([a, b])
            await proxy.stop()

    run(scenario())


def test_a_restarted_validator_is_reconnected_on_the_same_port() -> None:
    async def scenario() -> None:
        nodes = await start_mesh(4)
        endpoints = {node.address: node.endpoint for node in nodes}
        others, down = nodes[:3], nodes[3]
        restarted: Node | None = None
        try:
            await eventually(fully_connected(nodes))
            await down.transport.stop()
            await eventually(
                lambda: all(down.address not in n.transport.connected_peers for n in others), what="loss seen"
            )
            others[0].transport.send(down.address, b"sent while down")

            restarted = make_node(down.signer, endpoints, port=down.endpoint[1])
            await restarted.transport.start()
            assert restarted.endpoint == down.endpoint
            await eventually(fully_connected([*others, restarted]), what="reconnected")
            await eventually(lambda: b"sent while down" in restarted.received(others[0].address))

            restarted.transport.broadcast(b"back")
            others[1].transport.broadcast(b"welcome back")
            await eventually(lambda: all(n.received(down.address) == [b"back"] for n in others))
            await eventually(lambda: b"welcome back" in restarted.received(others[1].address))
            for node in others:
                assert node.transport.stats().peers[down.address].connects >= 2
        finally:
            await stop_all([*others, *([restarted] if restarted else [])])

    run(scenario())


def test_a_slow_consumer_does_not_hold_up_the_others() -> None:
    """The slow node's queue fills and drops its oldest frames; the others get everything."""
    config = dataclasses.replace(FAST, queue_frames=8, idle_timeout=10.0)
    count, size = 200, 128 * 1024

    async def scenario() -> None:
        gate = asyncio.Event()

        def slow(node: Node):  # type: ignore[no-untyped-def]
            async def handle(sender: Address, payload: bytes) -> None:
                await gate.wait()
                node.inbox.append((sender, payload))

            return handle

        sender = make_node(KeySigner.numbered(1), config=config)
        stuck = make_node(KeySigner.numbered(2), config=config, handler=slow)
        fast = make_node(KeySigner.numbered(3), config=config)
        nodes = [sender, stuck, fast]
        for node in nodes:
            await node.transport.start()
        endpoints = {node.address: node.endpoint for node in nodes}
        for node in nodes:
            node.transport.update_peers(endpoints)
        try:
            await eventually(fully_connected(nodes))
            for i in range(count):
                payload = i.to_bytes(4, "big") + bytes(size)
                sender.transport.broadcast(payload)
                await eventually(lambda i=i: len(fast.received(sender.address)) == i + 1, what=f"frame {i}")
                assert sender.transport.stats().peers[stuck.address].queued_frames <= 8

            to_stuck = sender.transport.stats().peers[stuck.address]
            assert to_stuck.frames_dropped > 0
            assert to_stuck.frames_sent + to_stuck.frames_dropped + to_stuck.queued_frames == count
            assert sender.transport.stats().peers[fast.address].frames_dropped == 0
            assert stuck.address in sender.transport.connected_peers  # slow is not dead

            gate.set()
            await eventually(lambda: sender.transport.stats().peers[stuck.address].queued_frames == 0)
            to_stuck = sender.transport.stats().peers[stuck.address]
            await eventually(lambda: len(stuck.received(sender.address)) == to_stuck.frames_sent)
            indices = [int.from_bytes(p[:4], "big") for p in stuck.received(sender.address)]
            assert indices == sorted(indices) and indices[-1] == count - 1
            assert to_stuck.frames_sent + to_stuck.frames_dropped == count
        finally:
            gate.set()
            await stop_all(nodes)

    run(scenario(), timeout=25)


def test_validator_set_updates_add_and_remove_peers() -> None:
    async def scenario() -> None:
        a, b, c = (make_node(KeySigner.numbered(i)) for i in (1, 2, 3))
        for node in (a, b, c):
            await node.transport.start()
        everyone = {node.address: node.endpoint for node in (a, b, c)}
        pair = {a.address: a.endpoint, b.address: b.endpoint}
        a.transport.update_peers(pair)
        b.transport.update_peers(pair)
        c.transport.update_peers(everyone)  # c thinks it is in; a and b do not yet
        try:
            await eventually(fully_connected([a, b]))
            await eventually(lambda: a.transport.stats().refused.get(rules.NOT_VALIDATOR, 0) >= 1)
            assert c.transport.connected_peers == frozenset()

            a.transport.update_peers(everyone)  # governance added c
            b.transport.update_peers(everyone)
            await eventually(fully_connected([a, b, c]), what="c joined")
            assert c.transport.broadcast(b"hello from c") == 2
            await eventually(lambda: a.received(c.address) == b.received(c.address) == [b"hello from c"])

            a.transport.update_peers({a.address: a.endpoint, c.address: c.endpoint})  # b removed
            assert b.address not in a.transport.connected_peers
            assert a.transport.send(b.address, b"gone") is False
            assert a.transport.broadcast(b"to c only") == 1
            assert set(a.transport.stats().peers) == {c.address}
            await eventually(lambda: a.address not in b.transport.connected_peers, what="b dropped")
            refused_before = a.transport.stats().refused.get(rules.NOT_VALIDATOR, 0)
            await eventually(
                lambda: a.transport.stats().refused.get(rules.NOT_VALIDATOR, 0) > refused_before,
                what="b's redials refused",
            )
            await eventually(lambda: c.received(a.address) == [b"to c only"])
            assert b"to c only" not in b.received()
            assert b.address in c.transport.connected_peers  # the others are untouched
        finally:
            await stop_all([a, b, c])

    run(scenario())


def test_a_simultaneous_dial_settles_on_one_connection() -> None:
    """Both dial at once (a gate makes sure): both keep the one the lower address dialled.

    Frames queued before are written on whichever connection comes up first, which may
    be the one given up: the handover (GOODBYE) still delivers each once, in order."""

    async def scenario() -> None:
        a = make_node(KeySigner.numbered(1))
        b = make_node(KeySigner.numbered(2))
        await a.transport.start()
        await b.transport.start()
        gate = Gate(parties=2)
        to_a, to_b = Proxy(a.endpoint, gate), Proxy(b.endpoint, gate)
        a_via, b_via = await to_a.start(), await to_b.start()
        b.transport.update_peers({a.address: a_via})
        a.transport.update_peers({b.address: b_via})
        early = [b"early %d" % i for i in range(100)]
        for payload in early:
            a.transport.send(b.address, payload)
            b.transport.send(a.address, payload)
        try:
            await eventually(fully_connected([a, b]))
            lower = min(a.address, b.address)
            await eventually(
                lambda: (
                    a.transport.stats().peers[b.address].dialled_by
                    == b.transport.stats().peers[a.address].dialled_by
                    == lower
                ),
                what="both ends on the connection the lower address dialled",
            )
            assert to_a.connections == to_b.connections == 1  # both dialled
            # At least one end saw both (the other may have had its dial refused before WELCOME).
            assert a.transport.stats().duplicates + b.transport.stats().duplicates >= 1
            await eventually(lambda: a.received() == early and b.received() == early, what="all early frames")
            await eventually(
                lambda: (
                    a.transport.stats().peers[b.address].retiring == 0
                    and b.transport.stats().peers[a.address].retiring == 0
                )
            )
            connects = (
                a.transport.stats().peers[b.address].connects,
                b.transport.stats().peers[a.address].connects,
            )
            await holds(
                lambda: (
                    (
                        a.transport.stats().peers[b.address].connects,
                        b.transport.stats().peers[a.address].connects,
                    )
                    == connects
                    and fully_connected([a, b])()
                ),
                duration=0.5,
                what="no flapping",
            )
            a.transport.send(b.address, b"ping")
            b.transport.send(a.address, b"pong")
            await eventually(lambda: b.received()[100:] == [b"ping"] and a.received()[100:] == [b"pong"])
        finally:
            await stop_all([a, b])
            await to_a.stop()
            await to_b.stop()

    run(scenario())


def test_oversized_payloads_and_frames_are_refused() -> None:
    small = dataclasses.replace(FAST, max_payload=1024, queue_bytes=1024 * 8)
    large = dataclasses.replace(FAST, max_payload=64 * 1024)

    async def scenario() -> None:
        sender = make_node(KeySigner.numbered(1), config=large)
        receiver = make_node(KeySigner.numbered(2), config=small)
        for node in (sender, receiver):
            await node.transport.start()
        endpoints = {node.address: node.endpoint for node in (sender, receiver)}
        for node in (sender, receiver):
            node.transport.update_peers(endpoints)
        try:
            await eventually(fully_connected([sender, receiver]))
            with pytest.raises(PayloadTooLarge):
                receiver.transport.send(sender.address, bytes(1025))
            with pytest.raises(PayloadTooLarge):
                receiver.transport.broadcast(bytes(1025))

            # A frame longer than the receiver allows is refused unread; the connection is renewed.
            sender.transport.send(receiver.address, bytes(2048))
            await eventually(lambda: receiver.transport.stats().peers[sender.address].frames_refused == 1)
            assert receiver.transport.stats().peers[sender.address].refusals == {frame_rules.OVERSIZED: 1}
            await eventually(fully_connected([sender, receiver]))
            sender.transport.send(receiver.address, b"small")
            await eventually(lambda: receiver.received() == [b"small"])

            # Before authentication, a long length prefix is refused at once.
            reader, writer = await asyncio.open_connection(*receiver.endpoint)
            writer.write(b"\xff\xff\xff\xff")
            assert await reader.read() == b""
            writer.close()
            assert receiver.transport.stats().refused.get(frame_rules.OVERSIZED) == 1
        finally:
            await stop_all([sender, receiver])

    run(scenario())


def test_a_silent_connection_is_closed_after_the_idle_timeout() -> None:
    """A validator that completes the handshake, then says nothing (not even pings)."""
    config = dataclasses.replace(FAST, heartbeat_interval=0.2, idle_timeout=0.6)

    async def scenario() -> None:
        a = make_node(KeySigner.numbered(1), config=config)
        silent = KeySigner.numbered(2)
        await a.transport.start()
        a.transport.update_peers({silent.address: dead_endpoint()})
        link = await raw_dial(a.endpoint, silent, a.address)
        try:
            await eventually(lambda: a.transport.connected_peers == {silent.address})
            link.send(Kind.DATA, b"one word")  # sealed under the agreed key: delivered
            await eventually(lambda: a.received() == [b"one word"])

            started = asyncio.get_running_loop().time()
            await eventually(lambda: not a.transport.connected_peers, timeout=3, what="closed when silent")
            assert asyncio.get_running_loop().time() - started >= 0.4
            assert set(await link.kinds_until_closed()) == {Kind.PING}  # a kept pinging meanwhile
        finally:
            link.close()
            await a.transport.stop()

    run(scenario())


@pytest.mark.parametrize("peer_says_goodbye", [True, False], ids=["goodbye", "no-goodbye"])
def test_a_connection_given_up_is_read_to_its_end_before_the_kept_one(peer_says_goodbye: bool) -> None:
    """The handover: frames the peer wrote on the old connection after this node gave it
    up are still delivered, before those on the new one; a peer that never says GOODBYE
    holds the new connection up for `handover_timeout` at most."""
    config = dataclasses.replace(FAST, handover_timeout=0.5)

    async def scenario() -> None:
        a = make_node(KeySigner.numbered(1), config=config)
        v = KeySigner.numbered(2)
        await a.transport.start()
        a.transport.update_peers({v.address: dead_endpoint()})
        old = await raw_dial(a.endpoint, v, a.address)
        new: RawLink | None = None
        try:
            await eventually(lambda: a.transport.connected_peers == {v.address})
            old.send(Kind.DATA, b"old 1")
            await eventually(lambda: a.received() == [b"old 1"])

            new = await raw_dial(a.endpoint, v, a.address)  # same dialer: the newer stays
            assert await old.receive() == (Kind.GOODBYE, b"")
            assert a.transport.stats().peers[v.address].retiring == 1
            new.send(Kind.DATA, b"new 1")  # written first, but must wait for the old ones
            await asyncio.sleep(0.1)
            assert a.received() == [b"old 1"]
            started = asyncio.get_running_loop().time()
            if peer_says_goodbye:
                old.send(Kind.DATA, b"old 2")
                old.send(Kind.DATA, b"old 3")
                old.send(Kind.GOODBYE)
                await eventually(lambda: a.received() == [b"old 1", b"old 2", b"old 3", b"new 1"])
                assert await old.kinds_until_closed() == []  # closed after the GOODBYEs
            else:
                await eventually(lambda: a.received() == [b"old 1", b"new 1"], timeout=2)
                assert asyncio.get_running_loop().time() - started >= 0.3
            stats = a.transport.stats().peers[v.address]
            assert stats.retiring == 0 and stats.connected and stats.frames_refused == 0
            new.send(Kind.DATA, b"new 2")
            await eventually(lambda: a.received()[-1:] == [b"new 2"])
        finally:
            old.close()
            if new is not None:
                new.close()
            await a.transport.stop()

    run(scenario())


def test_a_failing_consumer_is_counted_and_the_connection_goes_on() -> None:
    async def scenario() -> None:
        def fragile(node: Node):  # type: ignore[no-untyped-def]
            def handle(sender: Address, payload: bytes) -> None:
                if payload == b"boom":
                    raise RuntimeError("consumer bug")
                node.inbox.append((sender, payload))

            return handle

        a = make_node(KeySigner.numbered(1))
        b = make_node(KeySigner.numbered(2), handler=fragile)
        for node in (a, b):
            await node.transport.start()
        endpoints = {node.address: node.endpoint for node in (a, b)}
        for node in (a, b):
            node.transport.update_peers(endpoints)
        try:
            await eventually(fully_connected([a, b]))
            a.transport.send(b.address, b"boom")
            a.transport.send(b.address, b"fine")
            await eventually(lambda: b.received() == [b"fine"])
            stats = b.transport.stats()
            assert stats.handler_errors == 1
            assert stats.peers[a.address].frames_received == 2
            assert stats.peers[a.address].frames_refused == 0
        finally:
            await stop_all([a, b])

    run(scenario())


def test_the_signer_must_hold_the_nodes_address() -> None:
    key, other = KeySigner.numbered(1), KeySigner.numbered(2)
    with pytest.raises(ValueError, match="signer"):
        Transport(
            other.address, key, {}, lambda sender, payload: None, chain_id=CHAIN_ID, listen=(LOOPBACK, 0)
        )
    with pytest.raises(ValueError, match="listen"):
        Transport(key.address, key, {}, lambda sender, payload: None, chain_id=CHAIN_ID)


def test_messages_sent_before_start_wait_in_the_queue() -> None:
    config = TransportConfig(backoff_base=0.02, backoff_max=0.2, heartbeat_interval=0.5, idle_timeout=3.0)

    async def scenario() -> None:
        a, b = (
            make_node(KeySigner.numbered(1), config=config),
            make_node(KeySigner.numbered(2), config=config),
        )
        await b.transport.start()
        a.transport.update_peers({b.address: b.endpoint})
        assert a.transport.send(b.address, b"early")
        await a.transport.start()
        b.transport.update_peers({a.address: a.endpoint})
        try:
            await eventually(lambda: b.received() == [b"early"])
        finally:
            await stop_all([a, b])

    run(scenario())


def test_unauthenticated_connections_are_bounded_in_number_and_time() -> None:
    config = dataclasses.replace(FAST, max_pending_handshakes=1, handshake_timeout=0.3)

    async def scenario() -> None:
        a = make_node(KeySigner.numbered(1), config=config)
        await a.transport.start()
        first = await asyncio.open_connection(*a.endpoint)  # says nothing
        second = await asyncio.open_connection(*a.endpoint)
        try:
            assert await second[0].read() == b""  # refused at once: one handshake at a time
            assert a.transport.stats().refused == {"busy": 1}
            assert await first[0].read() == b""  # then the silent one times out
            assert a.transport.stats().refused == {"busy": 1, "timeout": 1}
            third = await raw_dial(a.endpoint, KeySigner.numbered(2), a.address)  # not a validator
        except asyncio.IncompleteReadError:
            assert a.transport.stats().refused[rules.NOT_VALIDATOR] == 1
        else:
            third.close()
            raise AssertionError("an outsider completed the handshake")
        finally:
            first[1].close()
            second[1].close()
            await a.transport.stop()

    run(scenario())
