#!/usr/bin/env node
// Contract events over WebSocket with ethers v6 and viem:
//
//   node tests/js/ws_events.mjs <rpcUrl> <privateKeyHex>
//
// Deploys ConclaveToken over HTTP, then listens on the node's WebSocket (the same port):
// ethers' `contract.on("Transfer", …)` and `provider.on("block", …)` through a
// WebSocketProvider, and viem's `watchContractEvent` and `watchBlockNumber` through the
// webSocket transport. Transfers are sent over HTTP; each listener must report them.
// Prints one JSON object on stdout.

import { Contract, ContractFactory, JsonRpcProvider, NonceManager, Wallet, WebSocketProvider } from "ethers";
import { createPublicClient, getAddress, webSocket } from "viem";

import { check, checkEqual, loadArtifact, runFlow } from "./lib.mjs";

const WAIT_MS = 20_000;

function within(promise, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`no ${what} within ${WAIT_MS / 1000} s`)), WAIT_MS)),
  ]);
}

runFlow("ws_events", async ({ rpcUrl, privateKey, setStep }) => {
  const wsUrl = rpcUrl.replace(/^http/, "ws");
  const artifact = loadArtifact("ConclaveToken");
  const http = new JsonRpcProvider(rpcUrl);
  const signer = new NonceManager(new Wallet(privateKey, http));
  const owner = await signer.getAddress();

  setStep("deploy over HTTP");
  const token = await new ContractFactory(artifact.abi, artifact.bytecode, signer).deploy("WS", "WS", 10n ** 24n);
  await token.waitForDeployment();
  const tokenAddress = await token.getAddress();

  setStep("ethers WebSocketProvider: contract.on and provider.on(block)");
  const ws = new WebSocketProvider(wsUrl);
  checkEqual((await ws.getNetwork()).chainId, (await http.getNetwork()).chainId, "chain id over WebSocket");
  const watched = new Contract(tokenAddress, artifact.abi, ws);
  const firstRecipient = Wallet.createRandom().address;
  const ethersEvent = new Promise((resolve) => {
    watched.on("Transfer", (from, to, value, event) => {
      if (to === firstRecipient) resolve({ from, to, value, block: event.log.blockNumber });
    });
  });
  const ethersBlock = new Promise((resolve) => ws.once("block", resolve));
  await new Promise((resolve) => setTimeout(resolve, 300)); // let the subscriptions reach the node
  const sent = await (await token.transfer(firstRecipient, 111n)).wait();
  const seen = await within(ethersEvent, "ethers Transfer event");
  checkEqual(seen.from, owner, "ethers event: from");
  checkEqual(seen.value, 111n, "ethers event: value");
  checkEqual(seen.block, sent.blockNumber, "ethers event: block");
  const blockSeen = await within(ethersBlock, "ethers block event");
  check(blockSeen >= 1, `ethers block event ${blockSeen}`);
  // No unsubscribing here: the flow's process exits when it prints its result, and an
  // unsubscribe still in flight when a provider is destroyed fails the flow.

  setStep("viem webSocket transport: watchContractEvent and watchBlockNumber");
  const client = createPublicClient({ transport: webSocket(wsUrl) });
  const secondRecipient = getAddress(Wallet.createRandom().address);
  const viemLogs = new Promise((resolve) => {
    client.watchContractEvent({
      address: tokenAddress,
      abi: artifact.abi,
      eventName: "Transfer",
      onLogs: (logs) => {
        const mine = logs.filter((log) => log.args.to === secondRecipient);
        if (mine.length) resolve(mine[0]);
      },
    });
  });
  const viemBlock = new Promise((resolve) => {
    client.watchBlockNumber({ onBlockNumber: resolve });
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const second = await (await token.transfer(secondRecipient, 222n)).wait();
  const log = await within(viemLogs, "viem Transfer log");
  checkEqual(log.args.value, 222n, "viem log: value");
  checkEqual(log.blockNumber, BigInt(second.blockNumber), "viem log: block");
  const viemBlockNumber = await within(viemBlock, "viem block number");

  return {
    token: tokenAddress,
    ethersEventBlock: seen.block,
    viemLogBlock: Number(log.blockNumber),
    ethersBlock: blockSeen,
    viemBlock: Number(viemBlockNumber),
  };
});
