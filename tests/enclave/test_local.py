"""The in-process enclave keeps the recent block hashes BLOCKHASH reads, across restarts."""

from pathlib import Path

from gateway.node import Node, NodeConfig
from ledger.store import MAX_ANCESTORS


def test_calls_at_the_head_see_the_same_256_ancestors_as_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    node = Node(NodeConfig(database_url=url, enclave_dir=tmp_path / "enclave"))
    for _ in range(MAX_ANCESTORS + 4):
        node.ordering.seal(allow_empty=True)
    head = node.head.number
    expected = tuple(node.store.ancestor_hashes(head - 1))
    assert len(expected) == MAX_ANCESTORS
    assert node.enclave._ancestors_before(head) == expected
    node.store.close()
    node.engine.dispose()

    restarted = Node(NodeConfig(database_url=url, enclave_dir=tmp_path / "enclave"))
    assert restarted.enclave._ancestors_before(head) == expected
    restarted.store.close()
    restarted.engine.dispose()
