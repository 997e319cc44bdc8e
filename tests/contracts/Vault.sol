// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// A small confidential contract for the tests: a note only its parties may read, an
/// event that carries it, parties added by the contract's own rule, and calls onward.
contract Vault {
    event NoteWritten(address indexed author, bytes32 indexed tag, string note);

    string public note;
    bytes32 public tag;
    address public owner;
    mapping(address => bool) public invited;

    constructor(string memory initialNote) payable {
        owner = msg.sender;
        note = initialNote;
    }

    receive() external payable {}

    function write(string calldata newNote, bytes32 newTag) external {
        note = newNote;
        tag = newTag;
        emit NoteWritten(msg.sender, newTag, newNote);
    }

    function invite(address who) external {
        require(msg.sender == owner, "only the owner invites");
        invited[who] = true;
    }

    /// The node asks this to decide who, beyond the creation parties, may see the vault.
    function isParty(address who) external view returns (bool) {
        return who == owner || invited[who];
    }

    /// Call `target` with `data` (to reach other contracts from inside this one).
    function forward(address target, bytes calldata data) external returns (bool ok, bytes memory output) {
        (ok, output) = target.call(data);
    }
}

/// A public contract that calls whatever it is asked to, and counts.
contract Relay {
    uint256 public calls;
    event Relayed(address indexed target, bool ok);

    function relay(address target, bytes calldata data) external payable returns (bool ok) {
        calls += 1;
        (ok, ) = target.call{value: msg.value}(data);
        emit Relayed(target, ok);
    }

    function codeSizeOf(address target) external view returns (uint256 size) {
        assembly {
            size := extcodesize(target)
        }
    }

    function balanceOf(address target) external view returns (uint256) {
        return target.balance;
    }
}
