#!/usr/bin/env node
// The ethers v6 helper of examples/confidential (conclave.mjs) against a running node:
//
//   CONCLAVE_PARTY_KEY=0x… CONCLAVE_OUTSIDER_KEY=0x… \
//     node tests/examples/confidential_flow.mjs <rpcUrl> <retailerKeyHex>
//
// The retailer signs in and deploys PurchaseOrders confidential to the party (the
// distributor) with conclave_sendRawPrivateTransaction, reading through a JsonRpcProvider
// on /rpc/<token>. The party subscribes to the contract's OrderCreated event over
// ws://…/rpc/<token>, an outsider (signed in as somebody else) subscribes to the same logs,
// and the retailer creates an order with an ordinary transaction: the party's subscription
// gets the event; the outsider's gets nothing, and every read of the outsider and of an
// anonymous provider finds nothing. Prints one JSON object on stdout.

import { readFileSync } from "node:fs";
import path from "node:path";
import process from "node:process";

import { Contract, ContractFactory, Wallet } from "ethers";

import { deployPrivate, providerFor, rpcUrl, signIn, webSocketProviderFor } from "../../examples/confidential/conclave.mjs";
import { REPO_ROOT, check, checkEqual, runFlow } from "../js/lib.mjs";

const WAIT_MS = 20_000;
const QUIET_MS = 1_500;

function within(promise, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`no ${what} within ${WAIT_MS / 1000} s`)), WAIT_MS)),
  ]);
}

function environmentKey(name) {
  const key = process.env[name];
  if (!key || !/^0x[0-9a-fA-F]{64}$/.test(key)) throw new Error(`set ${name} to a 0x-prefixed private key`);
  return key;
}

runFlow(
  "confidential_flow",
  async ({ rpcUrl: url, privateKey, setStep }) => {
    const artifact = JSON.parse(
      readFileSync(path.join(REPO_ROOT, "examples", "purchase_orders", "build", "PurchaseOrders.json"), "utf8"),
    );
    const partyKey = environmentKey("CONCLAVE_PARTY_KEY");
    const outsiderKey = environmentKey("CONCLAVE_OUTSIDER_KEY");

    setStep("sign in (EIP-4361)");
    const retailerToken = await signIn(url, new Wallet(privateKey));
    const partyToken = await signIn(url, new Wallet(partyKey));
    const outsiderToken = await signIn(url, new Wallet(outsiderKey));
    check(retailerToken !== partyToken && partyToken !== outsiderToken, "each sign-in gets its own token");
    const retailerProvider = providerFor(url, retailerToken);
    check(
      retailerProvider._getConnection().url === rpcUrl(url, retailerToken),
      "the provider's URL carries the token",
    );
    const retailer = new Wallet(privateKey, retailerProvider);
    const party = new Wallet(partyKey, providerFor(url, partyToken));
    const outsider = providerFor(url, outsiderToken);
    const anonymous = providerFor(url, null);

    setStep("deploy confidentially (conclave_sendRawPrivateTransaction)");
    const factory = new ContractFactory(artifact.abi, artifact.bytecode, retailer);
    const orders = await deployPrivate(factory, [party.address], [party.address]);
    const address = await orders.getAddress();
    const deployTx = orders.deploymentTransaction();
    const deployReceipt = await retailerProvider.getTransactionReceipt(deployTx.hash);
    checkEqual(deployReceipt?.status, 1, "the retailer's deployment receipt status");
    check((await retailerProvider.getCode(address)).length > 2, "the retailer reads the contract's code");
    check((await party.provider.getCode(address)).length > 2, "the party reads the contract's code");
    checkEqual(await orders.retailer(), retailer.address, "retailer() as the retailer reads it");
    checkEqual(await orders.distributor(), party.address, "distributor() as the retailer reads it");
    for (const [who, provider] of [["outsider", outsider], ["anonymous", anonymous]]) {
      checkEqual(await provider.getCode(address), "0x", `${who}: eth_getCode`);
      checkEqual(await provider.getTransaction(deployTx.hash), null, `${who}: eth_getTransactionByHash`);
      checkEqual(await provider.getTransactionReceipt(deployTx.hash), null, `${who}: eth_getTransactionReceipt`);
    }

    setStep("subscribe over ws://…/rpc/<token>");
    const partyWs = webSocketProviderFor(url, partyToken);
    const outsiderWs = webSocketProviderFor(url, outsiderToken);
    const watched = new Contract(address, artifact.abi, partyWs);
    const event = new Promise((resolve) => {
      watched.on("OrderCreated", (id, retailerAddress, distributor, item, quantity, payload) => {
        resolve({ id, retailerAddress, distributor, item, quantity, block: payload.log.blockNumber });
      });
    });
    const outsiderLogs = [];
    await outsiderWs.on({ address }, (log) => outsiderLogs.push(log));
    await new Promise((resolve) => setTimeout(resolve, 300)); // let the subscriptions reach the node

    setStep("create an order with an ordinary transaction (confidential automatically)");
    const created = await (await orders.createOrder("Blue widgets", 250n)).wait();
    checkEqual(created.status, 1, "createOrder status");
    const seen = await within(event, "OrderCreated event for the party over WebSocket");
    checkEqual(seen.id, 1n, "event: id");
    checkEqual(seen.retailerAddress, retailer.address, "event: retailer");
    checkEqual(seen.distributor, party.address, "event: distributor");
    checkEqual(seen.item, "Blue widgets", "event: item");
    checkEqual(seen.quantity, 250n, "event: quantity");
    checkEqual(seen.block, created.blockNumber, "event: block");

    setStep("the party reads the order; the outsider and anonymous see nothing");
    const partyView = new Contract(address, artifact.abi, party);
    const order = await partyView.getOrder(1n);
    checkEqual(order.item, "Blue widgets", "the party's getOrder(1).item");
    checkEqual(order.quantity, 250n, "the party's getOrder(1).quantity");
    const partyLogs = await party.provider.getLogs({ address, fromBlock: 0 });
    checkEqual(partyLogs.length, 1, "the party's eth_getLogs");
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS)); // would the outsider's subscription get it?
    checkEqual(outsiderLogs.length, 0, "logs the outsider's subscription received");
    for (const [who, provider] of [["outsider", outsider], ["anonymous", anonymous]]) {
      checkEqual((await provider.getLogs({ address, fromBlock: 0 })).length, 0, `${who}: eth_getLogs`);
      checkEqual(await provider.getTransaction(created.hash), null, `${who}: the order's transaction`);
      checkEqual(await provider.call({ to: address, data: orders.interface.encodeFunctionData("orderCount") }), "0x", `${who}: eth_call`);
      checkEqual(await provider.getStorage(address, 0), `0x${"00".repeat(32)}`, `${who}: eth_getStorageAt`);
    }
    // No unsubscribing: the flow's process exits when it prints its result.

    return {
      contract: address,
      retailer: retailer.address,
      party: party.address,
      deployTx: deployTx.hash,
      orderTx: created.hash,
      eventBlock: seen.block,
      outsiderLogs: outsiderLogs.length,
    };
  },
  { timeoutMs: 90_000 },
);
