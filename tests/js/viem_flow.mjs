#!/usr/bin/env node
// viem v2 client flow against a Conclave node:
//
//   node tests/js/viem_flow.mjs <rpcUrl> <privateKeyHex>
//
// Reads the chain id from the node, defines a custom chain with it, deploys
// ConclaveToken, reads it, transfers tokens and ether with viem's default fee
// logic (viem prepares each transaction with the node's eth_fillTransaction: nonce,
// gas and fees in one call), and checks that an over-balance transfer is
// decoded as OpenZeppelin's ERC20InsufficientBalance custom error by
// simulateContract. Prints one JSON object on stdout; exits non-zero with a
// message on stderr on any failure.

import { createRequire } from "node:module";

import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
  defineChain,
  getAddress,
  http,
  parseEther,
  parseEventLogs,
} from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { check, checkEqual, loadArtifact, runFlow } from "./lib.mjs";

const TOKEN_NAME = "Conclave Token";
const TOKEN_SYMBOL = "CLV";
const INITIAL_SUPPLY = parseEther("1000000");
const TOKEN_AMOUNT = parseEther("4321.5");
const ETH_AMOUNT = parseEther("2.5");
const POLLING_INTERVAL_MS = 250;
const viemVersion = createRequire(import.meta.url)("viem/package.json").version;

runFlow("viem_flow", async ({ rpcUrl, privateKey, setStep }) => {
  const artifact = loadArtifact("ConclaveToken");
  const { abi } = artifact;
  const account = privateKeyToAccount(privateKey);

  // Count the JSON-RPC methods viem sends, for the summary (e.g. to see eth_fillTransaction).
  const rpcMethods = {};
  const transport = http(rpcUrl, {
    onFetchRequest(_request, init) {
      try {
        const body = JSON.parse(init.body);
        for (const call of Array.isArray(body) ? body : [body]) {
          rpcMethods[call.method] = (rpcMethods[call.method] ?? 0) + 1;
        }
      } catch {
        // not JSON: nothing to count
      }
    },
  });

  setStep("eth_chainId");
  const bootstrap = createPublicClient({ transport, pollingInterval: POLLING_INTERVAL_MS });
  const chainId = await bootstrap.getChainId();
  check(Number.isSafeInteger(chainId) && chainId > 0, `bad chain id ${chainId}`);

  const chain = defineChain({
    id: chainId,
    name: "Conclave",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
  const publicClient = createPublicClient({ chain, transport, pollingInterval: POLLING_INTERVAL_MS });
  const walletClient = createWalletClient({ account, chain, transport, pollingInterval: POLLING_INTERVAL_MS });

  setStep("deploy ConclaveToken");
  const deployTx = await walletClient.deployContract({
    abi,
    bytecode: artifact.bytecode,
    args: [TOKEN_NAME, TOKEN_SYMBOL, INITIAL_SUPPLY],
  });
  const deployReceipt = await publicClient.waitForTransactionReceipt({ hash: deployTx, timeout: 30_000 });
  checkEqual(deployReceipt.status, "success", "deployment receipt status");
  check(
    typeof deployReceipt.contractAddress === "string",
    `deployment receipt has no contractAddress: ${deployReceipt.contractAddress}`,
  );
  const token = getAddress(deployReceipt.contractAddress);
  const code = await publicClient.getCode({ address: token });
  checkEqual(code, artifact.deployedBytecode, "eth_getCode of the token vs the artefact's deployedBytecode");

  setStep("read token");
  const read = (functionName, args = []) => publicClient.readContract({ address: token, abi, functionName, args });
  const [name, symbol, decimals, totalSupply, ownerBalance] = await Promise.all([
    read("name"),
    read("symbol"),
    read("decimals"),
    read("totalSupply"),
    read("balanceOf", [account.address]),
  ]);
  checkEqual(name, TOKEN_NAME, "name()");
  checkEqual(symbol, TOKEN_SYMBOL, "symbol()");
  checkEqual(decimals, 18, "decimals()");
  checkEqual(totalSupply, INITIAL_SUPPLY, "totalSupply()");
  checkEqual(ownerBalance, INITIAL_SUPPLY, "balanceOf(deployer) after deployment");

  setStep("token transfer (default fees)");
  const recipient = privateKeyToAccount(generatePrivateKey()).address;
  const transferTx = await walletClient.writeContract({
    address: token,
    abi,
    functionName: "transfer",
    args: [recipient, TOKEN_AMOUNT],
  });
  const transferReceipt = await publicClient.waitForTransactionReceipt({ hash: transferTx, timeout: 30_000 });
  checkEqual(transferReceipt.status, "success", "transfer receipt status");
  checkEqual(transferReceipt.type, "eip1559", "transfer receipt type");
  checkEqual(transferReceipt.transactionHash, transferTx, "transfer receipt transactionHash");
  const transferTxData = await publicClient.getTransaction({ hash: transferTx });
  checkEqual(transferTxData.type, "eip1559", "transfer transaction type");
  const transfers = parseEventLogs({ abi, logs: transferReceipt.logs, eventName: "Transfer" });
  checkEqual(transfers.length, 1, "number of Transfer events in the transfer receipt");
  checkEqual(transfers[0].address.toLowerCase(), token.toLowerCase(), "Transfer log address");
  checkEqual(transfers[0].args.from, account.address, "Transfer.from");
  checkEqual(transfers[0].args.to, recipient, "Transfer.to");
  checkEqual(transfers[0].args.value, TOKEN_AMOUNT, "Transfer.value");

  setStep("token balances after transfer");
  checkEqual(await read("balanceOf", [recipient]), TOKEN_AMOUNT, "balanceOf(recipient)");
  const ownerBalanceAfter = await read("balanceOf", [account.address]);
  checkEqual(ownerBalanceAfter, INITIAL_SUPPLY - TOKEN_AMOUNT, "balanceOf(deployer) after transfer");

  setStep("ether transfer (default fees)");
  const ethRecipient = privateKeyToAccount(generatePrivateKey()).address;
  const senderEthBefore = await publicClient.getBalance({ address: account.address });
  const ethTx = await walletClient.sendTransaction({ to: ethRecipient, value: ETH_AMOUNT });
  const ethReceipt = await publicClient.waitForTransactionReceipt({ hash: ethTx, timeout: 30_000 });
  checkEqual(ethReceipt.status, "success", "ether transfer receipt status");
  checkEqual(ethReceipt.type, "eip1559", "ether transfer receipt type");
  checkEqual(ethReceipt.gasUsed, 21000n, "ether transfer gasUsed");
  const senderEthAfter = await publicClient.getBalance({ address: account.address });
  checkEqual(await publicClient.getBalance({ address: ethRecipient }), ETH_AMOUNT, "ether recipient balance");
  checkEqual(
    senderEthBefore - senderEthAfter,
    ETH_AMOUNT + ethReceipt.gasUsed * ethReceipt.effectiveGasPrice,
    "sender ether balance decrease (value + gasUsed * effectiveGasPrice)",
  );

  setStep("simulate over-balance transfer");
  const tooMuch = ownerBalanceAfter + 1n;
  let simulateError = null;
  try {
    await publicClient.simulateContract({
      account,
      address: token,
      abi,
      functionName: "transfer",
      args: [recipient, tooMuch],
    });
  } catch (error) {
    simulateError = error;
  }
  check(simulateError !== null, "simulateContract of an over-balance transfer did not revert");
  check(simulateError instanceof BaseError, `expected a viem BaseError, got ${simulateError}`);
  const reverted = simulateError.walk((e) => e instanceof ContractFunctionRevertedError);
  check(
    reverted instanceof ContractFunctionRevertedError,
    `simulateContract error is not a ContractFunctionRevertedError: ${simulateError.shortMessage ?? simulateError.message}`,
  );
  check(
    reverted.data?.errorName !== undefined,
    `viem could not decode the revert (raw=${reverted.raw}); the node must return the revert data in the eth_call error`,
  );
  checkEqual(reverted.data.errorName, "ERC20InsufficientBalance", "decoded custom error name");
  const [errSender, errBalance, errNeeded] = reverted.data.args;
  checkEqual(errSender, account.address, "ERC20InsufficientBalance.sender");
  checkEqual(errBalance, ownerBalanceAfter, "ERC20InsufficientBalance.balance");
  checkEqual(errNeeded, tooMuch, "ERC20InsufficientBalance.needed");

  return {
    client: "viem",
    clientVersion: viemVersion,
    chainId,
    account: account.address,
    token,
    deployTx,
    transferTx,
    blockNumber: Number(transferReceipt.blockNumber),
    recipient,
    amount: TOKEN_AMOUNT.toString(),
    txType: transferReceipt.type,
    maxFeePerGas: transferTxData.maxFeePerGas?.toString() ?? null,
    maxPriorityFeePerGas: transferTxData.maxPriorityFeePerGas?.toString() ?? null,
    ethTransferTx: ethTx,
    ethRecipient,
    ethAmount: ETH_AMOUNT.toString(),
    customError: reverted.data.errorName,
    rpcMethods,
  };
});
