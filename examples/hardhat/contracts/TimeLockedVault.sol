// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @notice Holds the ether it is deployed with until `unlockTime`; then its owner may
/// take it out.
contract TimeLockedVault {
    uint256 public immutable unlockTime;
    address payable public immutable owner;

    event Withdrawal(uint256 amount, uint256 when);

    error StillLocked(uint256 unlockTime, uint256 now);
    error NotOwner(address caller);

    constructor(uint256 unlockTime_) payable {
        require(block.timestamp < unlockTime_, "unlock time must be in the future");
        unlockTime = unlockTime_;
        owner = payable(msg.sender);
    }

    function withdraw() external {
        if (block.timestamp < unlockTime) revert StillLocked(unlockTime, block.timestamp);
        if (msg.sender != owner) revert NotOwner(msg.sender);
        uint256 amount = address(this).balance;
        emit Withdrawal(amount, block.timestamp);
        (bool paid, ) = owner.call{value: amount}("");
        require(paid, "payment failed");
    }
}
