"""The governance system contract run by py-evm in real blocks (`governance.system_contract`)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import function_signature_to_4byte_selector

import enclave  # noqa: F401 - installs the governance contract, as every node does
from evm_runtime.calls import CallContext, revert_message
from evm_runtime.chain import GenesisAccount
from evm_runtime.exceptions import ExecutionReverted
from evm_runtime.system_contracts import genesis_storage
from evm_runtime.transactions import CallRequest
from governance import signed
from governance.codec import encode_state
from governance.constitution import TWO_THIRDS, Constitution
from governance.state import Action, GovernanceState, Member, ProposalState
from governance.system_contract import (
    CODE_MARKER,
    EVENT_TOPICS,
    GOVERNANCE_ADDRESS,
    decode_action,
    encode_action,
)
from tests.evm_runtime.chainkit import ACCOUNTS, ETHER, MemoryChain, address_of, decoded

ALICE, BOB, CAROL, DAVE = ACCOUNTS[:4]
MEMBERS = [address_of(a) for a in (ALICE, BOB, CAROL)]


def governed_chain(state: GovernanceState) -> MemoryChain:
    storage, nodes = genesis_storage(encode_state(state))
    alloc = {address_of(a): GenesisAccount(balance=100 * ETHER) for a in ACCOUNTS}
    alloc[GOVERNANCE_ADDRESS] = GenesisAccount(code=CODE_MARKER, storage=storage)
    return MemoryChain(alloc=alloc, extra_nodes=nodes)


@pytest.fixture
def chain() -> MemoryChain:
    return governed_chain(GovernanceState(members={m: Member("founder") for m in MEMBERS}))


def calldata(signature: str, types: list[str], values: list[Any]) -> bytes:
    return function_signature_to_4byte_selector(signature) + abi_encode(types, values)


def propose_data(*actions: Action) -> bytes:
    return calldata("propose((string,bytes)[])", ["(string,bytes)[]"], [[encode_action(a) for a in actions]])


def vote_data(pid: int, approve: bool) -> bytes:
    return calldata("vote(uint256,bool)", ["uint256", "bool"], [pid, approve])


class Sender:
    def __init__(self, chain: MemoryChain) -> None:
        self.chain = chain
        self.nonces: dict[bytes, int] = {}

    def send(self, account: Any, data: bytes, to: bytes | None = GOVERNANCE_ADDRESS) -> Any:
        address = address_of(account)
        nonce = self.nonces.get(address, 0)
        built = self.chain.build([decoded(account, nonce=nonce, to=to, data=data, gas=1_000_000)])
        if built.transactions:
            self.nonces[address] = nonce + 1
        return built

    def view(self, signature: str, types: list[str], values: list[Any], out: list[str]) -> tuple[Any, ...]:
        context = CallContext(self.chain.head, self.chain.params, self.chain.cache)
        output = context.call(
            CallRequest(
                sender=address_of(ALICE),
                to=GOVERNANCE_ADDRESS,
                gas=1_000_000,
                data=calldata(signature, types, values),
            )
        ).output
        return tuple(abi_decode(out, output))


def test_two_of_three_add_a_user_with_events(chain: MemoryChain) -> None:
    sender = Sender(chain)
    dave = address_of(DAVE)
    built = sender.send(ALICE, propose_data(Action("add_user", {"address": dave})))
    (receipt,) = built.transactions
    assert receipt.status == 1
    assert receipt.logs[0].topics[0] == EVENT_TOPICS["ProposalCreated"]
    assert sender.view("isUser(address)", ["address"], [dave], ["bool"]) == (False,)
    assert sender.send(ALICE, vote_data(1, True)).transactions[0].status == 1
    (second,) = sender.send(BOB, vote_data(1, True)).transactions
    assert [log.topics[0] for log in second.logs] == [
        EVENT_TOPICS["BallotCast"],
        EVENT_TOPICS["ProposalResolved"],
    ]
    assert abi_decode(["uint8"], second.logs[1].data) == (list(ProposalState).index(ProposalState.ACCEPTED),)
    assert sender.view("isUser(address)", ["address"], [dave], ["bool"]) == (True,)
    proposer, state, *_ = sender.view(
        "proposal(uint256)",
        ["uint256"],
        [1],
        ["address", "uint8", "uint64", "uint64", "uint256", "uint256", "string"],
    )
    assert bytes.fromhex(proposer[2:]) == MEMBERS[0] and state == 1


def test_a_non_member_reverts_with_a_reason(chain: MemoryChain) -> None:
    sender = Sender(chain)
    (receipt,) = sender.send(
        DAVE, propose_data(Action("add_user", {"address": address_of(DAVE)}))
    ).transactions
    assert receipt.status == 0
    context = CallContext(chain.head, chain.params, chain.cache)
    with pytest.raises(ExecutionReverted, match="is not a member"):
        context.call(
            CallRequest(
                sender=address_of(DAVE), to=GOVERNANCE_ADDRESS, gas=1_000_000, data=vote_data(1, True)
            )
        )
    with pytest.raises(ExecutionReverted, match="no such function"):
        context.call(
            CallRequest(
                sender=address_of(DAVE), to=GOVERNANCE_ADDRESS, gas=1_000_000, data=b"\x01\x02\x03\x04"
            )
        )


def test_a_permissioned_network_drops_transactions_of_non_users(chain: MemoryChain) -> None:
    sender = Sender(chain)
    close = Action("set_config", {"key": "open_submission", "value": False})
    sender.send(ALICE, propose_data(close))
    sender.send(ALICE, vote_data(1, True))
    sender.send(BOB, vote_data(1, True))
    built = sender.send(DAVE, b"", to=MEMBERS[0])
    assert built.transactions == () and "not a user" in built.dropped[0][1]
    assert sender.send(CAROL, b"", to=MEMBERS[0]).transactions  # members always may send


def test_constitution_changes_need_two_thirds_and_round_trip_through_the_abi() -> None:
    stricter = Constitution(name="Stricter", default_threshold=TWO_THIRDS, voting_period=600)
    action = Action("set_constitution", {"constitution": stricter})
    kind, args = encode_action(action)
    assert decode_action(kind, args) == action
    chain = governed_chain(GovernanceState(members={m: Member("founder") for m in MEMBERS}))
    sender = Sender(chain)
    sender.send(ALICE, propose_data(action))
    sender.send(ALICE, vote_data(1, True))
    (out,) = sender.view(
        "proposal(uint256)",
        ["uint256"],
        [1],
        ["address", "uint8", "uint64", "uint64", "uint256", "uint256", "string"],
    )[1:2]
    assert out == 0  # open: one of three is not enough
    sender.send(BOB, vote_data(1, True))
    assert sender.view("constitution()", [], [], ["uint256", "string", "bytes32", "uint64"])[:2] == (
        2,
        "Stricter",
    )


def test_revert_reasons_read_as_geth_gives_them(chain: MemoryChain) -> None:
    context = CallContext(chain.head, chain.params, chain.cache)
    with pytest.raises(ExecutionReverted) as refused:
        context.call(
            CallRequest(sender=MEMBERS[0], to=GOVERNANCE_ADDRESS, gas=1_000_000, data=vote_data(9, True))
        )
    assert revert_message(refused.value.data) == "execution reverted: no proposal 9"


# -- signed messages (EIP-712) --------------------------------------------------------------


def signed_data(account: Any, primary: str, message: dict[str, Any], chain: MemoryChain) -> bytes:
    document = signed.typed_data(primary, message, chain.params.chain_id, GOVERNANCE_ADDRESS)
    return bytes(Account.sign_message(encode_typed_data(full_message=document), account.key).signature)


def test_a_relayer_sends_a_members_signed_ballot_once(chain: MemoryChain) -> None:
    sender = Sender(chain)
    dave = address_of(DAVE)
    sender.send(ALICE, propose_data(Action("add_user", {"address": dave})))
    signature = signed_data(BOB, "Vote", signed.vote_message(1, True, 0), chain)
    vote_signed = calldata(
        "voteSigned(uint256,bool,address,uint256,bytes)",
        ["uint256", "bool", "address", "uint256", "bytes"],
        [1, True, MEMBERS[1], 0, signature],
    )
    (relayed,) = sender.send(DAVE, vote_signed).transactions  # Dave relays Bob's ballot
    assert relayed.status == 1
    assert sender.view(
        "ballot(uint256,address)", ["uint256", "address"], [1, MEMBERS[1]], ["bool", "bool"]
    ) == (True, True)
    assert sender.view("nonceOf(address)", ["address"], [MEMBERS[1]], ["uint256"]) == (1,)
    (replayed,) = sender.send(DAVE, vote_signed).transactions
    assert replayed.status == 0  # the nonce is used up
    context = CallContext(chain.head, chain.params, chain.cache)
    with pytest.raises(ExecutionReverted, match="not 0x"):
        forged = signed_data(DAVE, "Vote", signed.vote_message(1, True, 1), chain)
        context.call(
            CallRequest(
                sender=dave,
                to=GOVERNANCE_ADDRESS,
                gas=1_000_000,
                data=calldata(
                    "voteSigned(uint256,bool,address,uint256,bytes)",
                    ["uint256", "bool", "address", "uint256", "bytes"],
                    [1, True, MEMBERS[1], 1, forged],
                ),
            )
        )


def test_a_signed_proposal_is_the_members(chain: MemoryChain) -> None:
    sender = Sender(chain)
    action = encode_action(Action("add_user", {"address": address_of(DAVE)}))
    signature = signed_data(CAROL, "Propose", signed.propose_message([action], 0), chain)
    data = calldata(
        "proposeSigned((string,bytes)[],address,uint256,bytes)",
        ["(string,bytes)[]", "address", "uint256", "bytes"],
        [[action], MEMBERS[2], 0, signature],
    )
    (receipt,) = sender.send(DAVE, data).transactions
    assert receipt.status == 1
    proposer = sender.view(
        "proposal(uint256)",
        ["uint256"],
        [1],
        ["address", "uint8", "uint64", "uint64", "uint256", "uint256", "string"],
    )[0]
    assert bytes.fromhex(proposer[2:]) == MEMBERS[2]
