#!/usr/bin/env node
// ethers v6 client flow against a Conclave node:
//
//   node tests/js/ethers_flow.mjs <rpcUrl> <privateKeyHex>
//
// Uses JsonRpcProvider with its default options (so requests are batched) and
// ethers' default EIP-1559 fee logic. Deploys ConclaveToken, reads it, transfers
// tokens and ether, checks balances, and checks that an over-balance transfer is
// decoded as OpenZeppelin's ERC20InsufficientBalance custom error. Prints one JSON
// object on stdout; exits non-zero with a message on stderr on any failure.

import { ContractFactory, JsonRpcProvider, NonceManager, Wallet, parseEther, version as ethersVersion } from "ethers";

import { check, checkEqual, loadArtifact, runFlow } from "./lib.mjs";

const TOKEN_NAME = "Conclave Token";
const TOKEN_SYMBOL = "CLV";
const INITIAL_SUPPLY = parseEther("1000000");
const TOKEN_AMOUNT = parseEther("1234.5");
const ETH_AMOUNT = parseEther("1.25");

runFlow("ethers_flow", async ({ rpcUrl, privateKey, setStep }) => {
  const provider = new JsonRpcProvider(rpcUrl);
  try {
    const wallet = new Wallet(privateKey, provider);
    // ethers caches identical RPC requests for 250 ms (cacheTimeout), so back-to-back
    // sends from a bare Wallet can reuse a stale "pending" nonce against a node that
    // mines instantly. NonceManager (ethers' own answer) counts nonces locally; fees
    // and everything else are still filled by the Wallet's default logic.
    const signer = new NonceManager(wallet);
    const artifact = loadArtifact("ConclaveToken");

    setStep("getNetwork");
    const network = await provider.getNetwork();
    const chainId = network.chainId;
    check(chainId > 0n, `chainId must be positive, got ${chainId}`);
    const rawChainId = await provider.send("eth_chainId", []);
    checkEqual(BigInt(rawChainId), chainId, "eth_chainId vs getNetwork().chainId");

    setStep("deploy ConclaveToken");
    const factory = new ContractFactory(artifact.abi, artifact.bytecode, signer);
    const token = await factory.deploy(TOKEN_NAME, TOKEN_SYMBOL, INITIAL_SUPPLY);
    await token.waitForDeployment();
    const tokenAddress = await token.getAddress();
    const deployTx = token.deploymentTransaction();
    const deployReceipt = await provider.getTransactionReceipt(deployTx.hash);
    check(deployReceipt !== null, `no receipt for deployment ${deployTx.hash}`);
    checkEqual(deployReceipt.status, 1, "deployment receipt status");
    checkEqual(deployReceipt.contractAddress, tokenAddress, "deployment receipt contractAddress");
    const code = await provider.getCode(tokenAddress);
    checkEqual(code, artifact.deployedBytecode, "eth_getCode of the token vs the artefact's deployedBytecode");

    setStep("read token");
    const [name, symbol, decimals, totalSupply, ownerBalance] = await Promise.all([
      token.name(),
      token.symbol(),
      token.decimals(),
      token.totalSupply(),
      token.balanceOf(wallet.address),
    ]);
    checkEqual(name, TOKEN_NAME, "name()");
    checkEqual(symbol, TOKEN_SYMBOL, "symbol()");
    checkEqual(decimals, 18n, "decimals()");
    checkEqual(totalSupply, INITIAL_SUPPLY, "totalSupply()");
    checkEqual(ownerBalance, INITIAL_SUPPLY, "balanceOf(deployer) after deployment");

    setStep("token transfer (default EIP-1559 fees)");
    const recipient = Wallet.createRandom().address;
    const transferTx = await token.transfer(recipient, TOKEN_AMOUNT);
    checkEqual(transferTx.type, 2, "transfer transaction type");
    check(transferTx.maxFeePerGas !== null && transferTx.maxPriorityFeePerGas !== null, "transfer tx has no EIP-1559 fee fields");
    const transferReceipt = await transferTx.wait();
    check(transferReceipt !== null, `no receipt for transfer ${transferTx.hash}`);
    checkEqual(transferReceipt.status, 1, "transfer receipt status");
    checkEqual(transferReceipt.type, 2, "transfer receipt type");
    checkEqual(transferReceipt.hash, transferTx.hash, "transfer receipt hash");
    const transfers = transferReceipt.logs
      .map((log) => token.interface.parseLog(log))
      .filter((parsed) => parsed !== null && parsed.name === "Transfer");
    checkEqual(transfers.length, 1, "number of Transfer events in the transfer receipt");
    checkEqual(transfers[0].args.from, wallet.address, "Transfer.from");
    checkEqual(transfers[0].args.to, recipient, "Transfer.to");
    checkEqual(transfers[0].args.value, TOKEN_AMOUNT, "Transfer.value");

    // Reads below pin a block: ethers would otherwise answer a repeat of an identical
    // request made within 250 ms from its cache, i.e. from before the transaction.
    setStep("token balances after transfer");
    const atTransfer = { blockTag: transferReceipt.blockNumber };
    checkEqual(await token.balanceOf(recipient, atTransfer), TOKEN_AMOUNT, "balanceOf(recipient)");
    const ownerBalanceAfter = await token.balanceOf(wallet.address, atTransfer);
    checkEqual(ownerBalanceAfter, INITIAL_SUPPLY - TOKEN_AMOUNT, "balanceOf(deployer) after transfer");

    setStep("ether transfer (default fees)");
    const ethRecipient = Wallet.createRandom().address;
    const ethTx = await signer.sendTransaction({ to: ethRecipient, value: ETH_AMOUNT });
    checkEqual(ethTx.type, 2, "ether transfer transaction type");
    const ethReceipt = await ethTx.wait();
    check(ethReceipt !== null, `no receipt for ether transfer ${ethTx.hash}`);
    checkEqual(ethReceipt.status, 1, "ether transfer receipt status");
    checkEqual(ethReceipt.gasUsed, 21000n, "ether transfer gasUsed");
    const senderEthBefore = await provider.getBalance(wallet.address, ethReceipt.blockNumber - 1);
    const senderEthAfter = await provider.getBalance(wallet.address, ethReceipt.blockNumber);
    checkEqual(await provider.getBalance(ethRecipient, ethReceipt.blockNumber), ETH_AMOUNT, "ether recipient balance");
    checkEqual(
      senderEthBefore - senderEthAfter,
      ETH_AMOUNT + ethReceipt.gasUsed * ethReceipt.gasPrice,
      "sender ether balance decrease over the block (value + gasUsed * effectiveGasPrice)",
    );

    setStep("over-balance transfer via staticCall");
    const tooMuch = ownerBalanceAfter + 1n;
    let revertError = null;
    try {
      await token.transfer.staticCall(recipient, tooMuch);
    } catch (error) {
      revertError = error;
    }
    check(revertError !== null, "transfer.staticCall of more than the balance did not revert");
    check(
      revertError.code === "CALL_EXCEPTION",
      `expected a CALL_EXCEPTION, got ${revertError.code}: ${revertError.shortMessage ?? revertError.message}`,
    );
    check(
      revertError.revert != null,
      `ethers could not decode the revert (data=${revertError.data}); the node must return the revert data in the eth_call error`,
    );
    checkEqual(revertError.revert.name, "ERC20InsufficientBalance", "decoded custom error name");
    const [errSender, errBalance, errNeeded] = revertError.revert.args;
    checkEqual(errSender, wallet.address, "ERC20InsufficientBalance.sender");
    checkEqual(errBalance, ownerBalanceAfter, "ERC20InsufficientBalance.balance");
    checkEqual(errNeeded, tooMuch, "ERC20InsufficientBalance.needed");

    return {
      client: "ethers",
      clientVersion: ethersVersion,
      chainId: Number(chainId),
      account: wallet.address,
      token: tokenAddress,
      deployTx: deployTx.hash,
      transferTx: transferTx.hash,
      blockNumber: transferReceipt.blockNumber,
      recipient,
      amount: TOKEN_AMOUNT.toString(),
      txType: transferReceipt.type,
      maxFeePerGas: transferTx.maxFeePerGas.toString(),
      maxPriorityFeePerGas: transferTx.maxPriorityFeePerGas.toString(),
      ethTransferTx: ethTx.hash,
      ethRecipient,
      ethAmount: ETH_AMOUNT.toString(),
      customError: revertError.revert.name,
    };
  } finally {
    provider.destroy();
  }
});
