// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ProbeChild
/// @notice A tiny contract that Probe creates (CREATE / CREATE2) and calls, so
///         nested calls, nested logs and contract creation happen inside one transaction.
contract ProbeChild {
    /// @notice Emitted by ping() with the caller (the Probe) and the new counter.
    event Pinged(address indexed caller, uint256 counter);

    /// @notice The contract that created this child.
    address public immutable creator;
    /// @notice Running total of everything passed to ping().
    uint256 public counter;

    /// @notice Records the creator; accepts value so CREATE with value can be tested.
    constructor() payable {
        creator = msg.sender;
    }

    /// @notice Adds `by` to the counter, emits Pinged and returns the new counter.
    function ping(uint256 by) external returns (uint256) {
        counter += by;
        emit Pinged(msg.sender, counter);
        return counter;
    }

    /// @notice Always reverts with a reason string (used for caught inner reverts).
    function fail() external pure {
        revert("child: failed");
    }
}

/// @title Probe
/// @notice Exercises the node's execution paths: storage, logs, every kind of
///         revert, value transfer, gas-heavy loops and nested calls/creation.
contract Probe {
    /// @notice Custom error raised by failCustom().
    error Unauthorized(address caller, uint256 code);

    /// @notice Emitted by set() and emitMany(); two indexed topics and a string in data.
    event ValueSet(address indexed who, uint256 indexed value, string note);
    /// @notice Emitted by emitMany(); indexed bytes32 and address, non-indexed uint and bytes.
    event Tagged(bytes32 indexed tag, address indexed who, uint256 amount, bytes data);
    /// @notice Emitted by emitMany() once per iteration; no indexed arguments.
    event Counted(uint256 index);
    /// @notice Anonymous event (no signature topic) emitted last by emitMany().
    event Marker(uint256 indexed count) anonymous;
    /// @notice Emitted when value is received through deposit() or a plain transfer.
    event Deposited(address indexed from, uint256 amount);
    /// @notice Emitted when a child contract is created.
    event ChildCreated(address indexed child, uint256 counter);
    /// @notice Emitted by tryChildFail() with the caught revert reason.
    event ChildFailed(address indexed child, string reason);

    /// @notice The code failCustom() passes to Unauthorized.
    uint256 public constant UNAUTHORIZED_CODE = 42;

    uint256 private _value;
    /// @notice Last result of burnGas(), stored so the loop cannot be optimised away.
    uint256 public burnResult;
    /// @notice The most recently created child.
    ProbeChild public lastChild;

    /// @notice Stores `value` and emits ValueSet(msg.sender, value, "set").
    function set(uint256 value) external {
        _value = value;
        emit ValueSet(msg.sender, value, "set");
    }

    /// @notice Returns the stored value.
    function get() external view returns (uint256) {
        return _value;
    }

    /// @notice Emits 3 + `count` logs in one call: ValueSet, Tagged, `count` x Counted, then anonymous Marker.
    function emitMany(uint256 count) external {
        emit ValueSet(msg.sender, _value, "many");
        emit Tagged(keccak256("probe"), msg.sender, count, abi.encodePacked(uint64(count)));
        for (uint256 i = 0; i < count; i++) {
            emit Counted(i);
        }
        emit Marker(count);
    }

    /// @notice Always reverts with the reason string "probe: told to revert".
    function revertWithReason() external pure {
        revert("probe: told to revert");
    }

    /// @notice Always fails a require with the reason "probe: requirement failed".
    function requireFalse() external pure {
        require(false, "probe: requirement failed");
    }

    /// @notice Always reverts with Unauthorized(msg.sender, UNAUTHORIZED_CODE).
    function failCustom() external view {
        revert Unauthorized(msg.sender, UNAUTHORIZED_CODE);
    }

    /// @notice Always fails an assert: Panic(0x01).
    function panicAssert() external pure {
        assert(false);
    }

    /// @notice Returns a / b; b == 0 gives Panic(0x12).
    function divide(uint256 a, uint256 b) external pure returns (uint256) {
        return a / b;
    }

    /// @notice A view that always reverts with "probe: view reverted" (it reads storage first).
    function revertingView() external view returns (uint256 current) {
        current = _value;
        if (current >= 0) revert("probe: view reverted"); // always true
    }

    /// @notice Accepts ether and emits Deposited.
    function deposit() external payable {
        emit Deposited(msg.sender, msg.value);
    }

    /// @notice Plain ether transfers are accepted too and emit Deposited.
    receive() external payable {
        emit Deposited(msg.sender, msg.value);
    }

    /// @notice Returns this contract's ether balance.
    function balance() external view returns (uint256) {
        return address(this).balance;
    }

    /// @notice Burns gas in proportion to `iterations` (a keccak chain), stores and returns the result.
    function burnGas(uint256 iterations) external returns (uint256 result) {
        bytes32 h = bytes32(_value);
        for (uint256 i = 0; i < iterations; i++) {
            h = keccak256(abi.encodePacked(h, i));
        }
        result = uint256(h);
        burnResult = result;
    }

    /// @notice CREATEs a ProbeChild (forwarding msg.value), pings it with `by` and returns both.
    function spawnChild(uint256 by) external payable returns (address child, uint256 counter) {
        ProbeChild c = new ProbeChild{value: msg.value}();
        counter = c.ping(by);
        lastChild = c;
        child = address(c);
        emit ChildCreated(child, counter);
    }

    /// @notice CREATE2s a ProbeChild with `salt` (forwarding msg.value), pings it with `by` and returns both.
    function spawnChild2(bytes32 salt, uint256 by) external payable returns (address child, uint256 counter) {
        ProbeChild c = new ProbeChild{salt: salt, value: msg.value}();
        counter = c.ping(by);
        lastChild = c;
        child = address(c);
        emit ChildCreated(child, counter);
    }

    /// @notice Calls ping(`by`) on the last child (a nested CALL) and returns its counter.
    function pingChild(uint256 by) external returns (uint256) {
        return lastChild.ping(by);
    }

    /// @notice Calls fail() on the last child, catches the inner revert and emits ChildFailed.
    function tryChildFail() external returns (string memory reason) {
        try lastChild.fail() {
            reason = "";
        } catch Error(string memory r) {
            reason = r;
        }
        emit ChildFailed(address(lastChild), reason);
    }
}
