// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title ConclaveToken
/// @notice A plain OpenZeppelin ERC-20 used by the README examples, the client
///         flow tests and the benchmarks.
contract ConclaveToken is ERC20 {
    /// @notice Creates the token and mints `initialSupply` (in base units) to the deployer.
    constructor(string memory name_, string memory symbol_, uint256 initialSupply) ERC20(name_, symbol_) {
        _mint(msg.sender, initialSupply);
    }
}
