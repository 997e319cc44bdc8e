// Hardhat 3 against a Conclave dev node: `conclave dev`, then `npm test`.
import { createRequire } from "node:module";

import hardhatEthers from "@nomicfoundation/hardhat-ethers";
import hardhatEthersChaiMatchers from "@nomicfoundation/hardhat-ethers-chai-matchers";
import hardhatMocha from "@nomicfoundation/hardhat-mocha";
import hardhatNetworkHelpers from "@nomicfoundation/hardhat-network-helpers";
import { defineConfig } from "hardhat/config";

const require = createRequire(import.meta.url);

export default defineConfig({
  plugins: [hardhatEthers, hardhatEthersChaiMatchers, hardhatMocha, hardhatNetworkHelpers],
  solidity: {
    version: "0.8.37",
    // The solc-js build from npm (package.json pins it), so compiling needs no download
    // from binaries.soliditylang.org.
    path: require.resolve("solc/soljson.js"),
  },
  networks: {
    conclave: {
      type: "http",
      chainType: "l1",
      url: process.env.CONCLAVE_RPC_URL ?? "http://127.0.0.1:8545",
      // The dev node's unlocked accounts sign (eth_accounts, eth_sendTransaction).
      accounts: "remote",
    },
  },
});
