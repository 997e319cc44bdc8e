#!/usr/bin/env node
// Governance by EIP-712 signed messages with ethers v6 against a Conclave node:
//
//   CONCLAVE_SECOND_KEY=<key> node tests/js/gov_eip712.mjs <rpcUrl> <privateKeyHex>
//
// Two members (the two keys) sign, with ethers' Wallet.signTypedData, a proposal to add
// a new user and their ballots for it, and POST them to the node's /gov endpoints, which
// relay them to the governance contract. An outsider's signed ballot is refused with a
// reason. Prints one JSON object on stdout.

import process from "node:process";

import { AbiCoder, Contract, JsonRpcProvider, Wallet } from "ethers";

import { check, checkEqual, runFlow } from "./lib.mjs";

const GOVERNANCE_ABI = [
  "function nonceOf(address member) view returns (uint256)",
  "function proposal(uint256 id) view returns (address, uint8, uint64, uint64, uint256, uint256, string)",
  "function isUser(address account) view returns (bool)",
  "event ProposalCreated(uint256 indexed id, address indexed proposer, uint64 closesAt)",
];
const ACCEPTED = 1n;

async function post(base, path, body) {
  const response = await fetch(`${base}/gov/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

runFlow("gov_eip712", async ({ rpcUrl, privateKey, setStep }) => {
  const provider = new JsonRpcProvider(rpcUrl);
  try {
    const base = rpcUrl.replace(/\/$/, "");
    const first = new Wallet(privateKey, provider);
    const second = new Wallet(process.env.CONCLAVE_SECOND_KEY, provider);

    setStep("read the EIP-712 domain");
    const info = await (await fetch(`${base}/gov/eip712`)).json();
    const governance = new Contract(info.contract, GOVERNANCE_ABI, provider);
    const { domain, types } = info;

    setStep("sign and send a proposal");
    const user = Wallet.createRandom().address;
    const action = { kind: "add_user", args: AbiCoder.defaultAbiCoder().encode(["address", "bool"], [user, false]) };
    let nonce = await governance.nonceOf(first.address);
    const proposal = { actions: [action], nonce };
    const proposed = await post(base, "propose", {
      member: first.address,
      nonce: Number(nonce),
      actions: [action],
      signature: await first.signTypedData(domain, { Propose: types.Propose, Action: types.Action }, proposal),
    });
    checkEqual(proposed.status, 200, `POST /gov/propose answered ${JSON.stringify(proposed.body)}`);
    const receipt = await provider.waitForTransaction(proposed.body.transaction);
    const created = receipt.logs.map((log) => governance.interface.parseLog(log)).find((log) => log);
    const id = created.args.id;

    setStep("sign and send two ballots");
    for (const member of [first, second]) {
      nonce = await governance.nonceOf(member.address);
      const ballot = { id, approve: true, nonce };
      const voted = await post(base, "vote", {
        member: member.address,
        nonce: Number(nonce),
        id: Number(id),
        approve: true,
        signature: await member.signTypedData(domain, { Vote: types.Vote }, ballot),
      });
      checkEqual(voted.status, 200, `POST /gov/vote answered ${JSON.stringify(voted.body)}`);
      await provider.waitForTransaction(voted.body.transaction);
    }
    const state = (await governance.proposal(id))[1];
    checkEqual(state, ACCEPTED, "the proposal's state after two of three ballots");
    check(await governance.isUser(user), "the new user is a user");

    setStep("an outsider's signed ballot");
    const outsider = Wallet.createRandom();
    const refused = await post(base, "vote", {
      member: outsider.address,
      nonce: 0,
      id: Number(id),
      approve: false,
      signature: await outsider.signTypedData(domain, { Vote: types.Vote }, { id, approve: false, nonce: 0 }),
    });
    return { proposalId: Number(id), state: Number(state), refusedStatus: refused.status, refusedReason: refused.body.detail };
  } finally {
    provider.destroy();
  }
});
