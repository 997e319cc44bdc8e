// Conclave's confidential transactions from ethers v6: sign in, read as yourself, send privately.
//
// A Conclave node shows confidential contracts and transactions only to their parties, so
// it must know who is asking. You prove it with Sign-In with Ethereum (EIP-4361): the node
// hands out a nonce, your wallet signs a sign-in message holding it, and the node answers
// a token bound to your address. The providers made here carry the token in the URL
// (`http://host:port/rpc/<token>`, `ws://host:port/rpc/<token>`), as wallets that cannot
// set headers do; without a token you see public data only.
//
//   import { Wallet } from "ethers";
//   import { signIn, providerFor, deployPrivate, sendPrivateTransaction } from "./conclave.mjs";
//
//   const url = "http://127.0.0.1:8545";
//   const token = await signIn(url, new Wallet(retailerKey));
//   const retailer = new Wallet(retailerKey, providerFor(url, token));
//
//   // A contract confidential to the retailer and one distributor:
//   const orders = await deployPrivate(new ContractFactory(abi, bytecode, retailer), [distributor], [distributor]);
//   // Later transactions to it are confidential to its parties automatically:
//   await (await orders.createOrder("Blue widgets", 250n)).wait();
//
// Only the transaction's own sender may send it privately (the provider must be signed in
// as the sender), so nobody can widen who sees somebody else's transaction.
// Needs ethers v6 and Node.js 20 or later (global fetch); nothing else.

import { Contract, JsonRpcProvider, Transaction, WebSocketProvider, getAddress, hexlify } from "ethers";

export const DEFAULT_STATEMENT = "Sign in to the Conclave node to read what you are a party to.";

/** The node's origin (`http://host:port`), whatever path `url` has. */
export function baseUrl(url) {
  const parsed = new URL(url);
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new Error(`expected the node's http(s) URL, e.g. http://127.0.0.1:8545, got ${url}`);
  }
  return parsed.origin;
}

/** The EIP-4361 message a wallet signs to sign in (Version 1, the address checksummed). */
export function siweMessage({ domain, address, uri, chainId, nonce, issuedAt = new Date(), statement = DEFAULT_STATEMENT }) {
  const issued = issuedAt.toISOString().replace(/\.\d{3}Z$/, "Z");
  const lines = [`${domain} wants you to sign in with your Ethereum account:`, getAddress(address), ""];
  if (statement) lines.push(statement, "");
  lines.push(`URI: ${uri}`, "Version: 1", `Chain ID: ${chainId}`, `Nonce: ${nonce}`, `Issued At: ${issued}`);
  return lines.join("\n");
}

async function jsonOf(response, what) {
  const text = await response.text();
  if (!response.ok) throw new Error(`${what} answered ${response.status}: ${text}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${what} answered something that is not JSON: ${text}`);
  }
}

/**
 * Signs in to the node at `url` with `signer` (a Wallet, or any ethers Signer that can
 * `signMessage`) and returns the token. Asks `GET /auth/nonce`, signs the EIP-4361 message
 * with personal_sign (EIP-191) and posts it to `/auth/login`. The token expires: sign in
 * again when the node refuses it (JSON-RPC error 4100, HTTP 401).
 */
export async function signIn(url, signer, { chainId, statement = DEFAULT_STATEMENT } = {}) {
  const base = baseUrl(url);
  const address = await signer.getAddress();
  if (chainId === undefined) {
    const answer = await jsonOf(
      await fetch(base, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      }),
      "eth_chainId",
    );
    chainId = Number(BigInt(answer.result));
  }
  const { nonce } = await jsonOf(await fetch(`${base}/auth/nonce`), `GET ${base}/auth/nonce`);
  const message = siweMessage({ domain: new URL(base).host, address, uri: base, chainId, nonce, statement });
  const signature = await signer.signMessage(message);
  const login = await jsonOf(
    await fetch(`${base}/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ message, signature }),
    }),
    `POST ${base}/auth/login`,
  );
  if (getAddress(login.address) !== getAddress(address)) {
    throw new Error(`the node signed in ${login.address}, not ${address}`);
  }
  return login.token;
}

/** `http://host:port/rpc/<token>` (or `ws://…` with `websocket`): the RPC URL that carries the token. */
export function rpcUrl(url, token, { websocket = false } = {}) {
  let base = baseUrl(url);
  if (websocket) base = base.replace(/^http/, "ws");
  return `${base}/rpc/${token}`;
}

/** A JsonRpcProvider that asks the node as the signed-in account (anonymous without a token). */
export function providerFor(url, token) {
  return new JsonRpcProvider(token ? rpcUrl(url, token) : baseUrl(url));
}

/** A WebSocketProvider on `ws://host:port/rpc/<token>`: subscriptions see what the account may. */
export function webSocketProviderFor(url, token) {
  return new WebSocketProvider(token ? rpcUrl(url, token, { websocket: true }) : baseUrl(url).replace(/^http/, "ws"));
}

/**
 * Signs `tx` with `signer` (connected to a provider signed in as the signer) and sends it
 * with `conclave_sendRawPrivateTransaction`, confidential to the sender and `privateFor`.
 * Returns an ethers TransactionResponse (`await response.wait()` gives the receipt). A
 * contract it creates is confidential to the same parties, and so is every later
 * transaction to it: send those as usual (`contract.method(...)`, any wallet).
 */
export async function sendPrivateTransaction(signer, tx, privateFor) {
  const provider = signer.provider;
  if (!provider) throw new Error("the signer must be connected to a provider signed in as its address");
  const populated = await signer.populateTransaction(tx);
  const raw = await signer.signTransaction(populated);
  const parties = privateFor.map((address) => getAddress(address));
  const [blockNumber, network, hash] = await Promise.all([
    provider.getBlockNumber(),
    provider.getNetwork(),
    provider.send("conclave_sendRawPrivateTransaction", [raw, { privateFor: parties }]),
  ]);
  const signed = Transaction.from(raw);
  if (hexlify(hash) !== signed.hash) throw new Error(`the node answered hash ${hash}, expected ${signed.hash}`);
  // As JsonRpcProvider.broadcastTransaction does for eth_sendRawTransaction.
  return provider._wrapTransactionResponse(signed, network).replaceableTransaction(blockNumber);
}

/**
 * Deploys `factory`'s contract (constructor `args`) confidential to its deployer and
 * `privateFor`; waits until it is mined and returns the Contract, connected to the
 * factory's runner.
 */
export async function deployPrivate(factory, args, privateFor) {
  const tx = await factory.getDeployTransaction(...args);
  const response = await sendPrivateTransaction(factory.runner, tx, privateFor);
  const receipt = await response.wait();
  if (!receipt || receipt.status !== 1 || !receipt.contractAddress) {
    throw new Error(`the confidential deployment ${response.hash} failed`);
  }
  // `contract.deploymentTransaction()` answers `response`, as ContractFactory.deploy's does.
  return new Contract(receipt.contractAddress, factory.interface, factory.runner, response);
}
