"""Disaster recovery: the ledger secrets kept with the ledger, openable only by enough members.

As CCF does it (its "recovery shares" and "ledger secret wrapping key"), adapted:

- A fresh 32-byte *recovery key* encrypts the ledger secrets (AES-256-GCM, `wrapped`).
- The recovery key is split with Shamir's secret sharing, k of n (pycryptodome's
  `Crypto.Protocol.SecretSharing.Shamir`, GF(2^128): two 16-byte halves split with the same
  share numbers). n: the members who registered a recovery key; k: governance's
  `recovery_threshold`, or a majority of all members when it is 0.
- Each member's share (`number ‖ half 1 ‖ half 2`, 33 bytes) is encrypted to that member's
  account key (ECIES over secp256k1: ephemeral key, ECDH, HKDF-SHA256, AES-256-GCM).
- The associated data of every ciphertext binds the chain id and the set's *fingerprint*
  (members, their keys, k, the secret version): a set whose threshold or members were
  altered in the database does not open.

Fewer than k shares determine nothing of the key (Shamir's scheme is information-theoretic):
combined, they give some other key, which does not open `wrapped`. The enclave issues a new
set with a new recovery key whenever the fingerprint changes, so a removed member's share
opens only sets older than its removal.

A member submits its share to a recovering enclave encrypted to that enclave's node key and
signed with its account key (`submission_digest`), so neither the host nor a relay reads it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import rlp
from coincurve import PrivateKey, PublicKey
from Crypto.Protocol.SecretSharing import Shamir
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_hash.auto import keccak
from eth_keys import keys

from evm_runtime.signatures import InvalidSignature, recover_signer
from evm_runtime.types import Address
from governance.state import GovernanceState

from .sealing import KEY_BYTES, NONCE_BYTES, LedgerSecrets, UnsealError

FORMAT = 1
WRAP_INFO = b"conclave/recovery-wrap/v1"
SHARE_INFO = b"conclave/recovery-share/v1"
SUBMISSION_INFO = b"conclave/recovery-submission/v1"
HALF_BYTES = 16
"""pycryptodome's Shamir shares 16-byte secrets: the 32-byte key goes as two halves."""
SHARE_BYTES = 1 + 2 * HALF_BYTES
PUBLIC_KEY_BYTES = 33


class RecoveryUnavailable(Exception):
    """No recovery set can be issued now; the message says what the members must do."""


@dataclass(frozen=True, slots=True)
class RecoveryPolicy:
    """Who holds shares and how many restore: what governance says at a block."""

    threshold: int
    holders: Mapping[Address, bytes]
    """Members with a registered recovery key (compressed public key)."""
    secret_version: int
    """The newest ledger secret version the set carries."""

    def fingerprint(self, chain_id: int) -> bytes:
        """What the set's ciphertexts are bound to: chain, threshold, holders and keys, version."""
        return keccak(
            rlp.encode(
                [
                    WRAP_INFO,
                    chain_id,
                    self.threshold,
                    [[bytes(a), key] for a, key in sorted(self.holders.items())],
                    self.secret_version,
                ]
            )
        )


def recovery_policy(state: GovernanceState, secret_version: int) -> RecoveryPolicy:
    """The policy governance sets; RecoveryUnavailable while fewer members registered a
    recovery key than the threshold asks for (nothing could then be recovered)."""
    threshold = state.recovery_threshold
    holders = {a: m.recovery_key for a, m in state.members.items() if m.recovery_key}
    if len(holders) < threshold:
        raise RecoveryUnavailable(
            f"{len(holders)} of {len(state.members)} members registered a recovery key and "
            f"{threshold} shares must restore the ledger: members register theirs with "
            "`conclave recovery register-key`"
        )
    return RecoveryPolicy(threshold, holders, secret_version)


@dataclass(frozen=True, slots=True)
class RecoverySet:
    """The ledger secrets wrapped with a recovery key, and that key's shares, each encrypted
    to its member: public-safe, stored with the ledger (`ledger.recovery_sets`)."""

    chain_id: int
    block_number: int
    threshold: int
    secret_version: int
    fingerprint: bytes
    wrapped: bytes
    """`nonce ‖ AES-256-GCM(recovery key, LedgerSecrets.to_bytes())`."""
    shares: Mapping[Address, tuple[bytes, bytes]]
    """Per member: its recovery public key and its share encrypted to it."""

    def to_bytes(self) -> bytes:
        return rlp.encode(
            [
                FORMAT,
                self.chain_id,
                self.block_number,
                self.threshold,
                self.secret_version,
                self.fingerprint,
                self.wrapped,
                [[bytes(a), key, share] for a, (key, share) in sorted(self.shares.items())],
            ]
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> RecoverySet:
        """The set `to_bytes` encoded; ValueError for other bytes."""
        try:
            fmt, chain, block, threshold, version, fingerprint, wrapped, shares = rlp.decode(raw)
            if int.from_bytes(fmt, "big") != FORMAT:
                raise ValueError("unknown recovery set format")
            return cls(
                chain_id=int.from_bytes(chain, "big"),
                block_number=int.from_bytes(block, "big"),
                threshold=int.from_bytes(threshold, "big"),
                secret_version=int.from_bytes(version, "big"),
                fingerprint=fingerprint,
                wrapped=wrapped,
                shares={Address(a): (key, share) for a, key, share in shares},
            )
        except (rlp.DecodingError, ValueError, TypeError) as exc:
            raise ValueError(f"not a recovery set: {exc}") from None

    def policy(self) -> RecoveryPolicy:
        return RecoveryPolicy(
            self.threshold, {a: key for a, (key, _) in self.shares.items()}, self.secret_version
        )

    def is_intact(self) -> bool:
        """Whether its threshold, members and keys are those its ciphertexts are bound to."""
        return self.policy().fingerprint(self.chain_id) == self.fingerprint


# -- ECIES over secp256k1 -----------------------------------------------------------------


def _kdf(shared: bytes, ephemeral: bytes, recipient: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=KEY_BYTES, salt=ephemeral + recipient, info=info).derive(shared)


def encrypt_to(public_key: bytes, plaintext: bytes, info: bytes, associated: bytes) -> bytes:
    """`plaintext` for the holder of `public_key`: `ephemeral key ‖ nonce ‖ ciphertext`."""
    recipient = PublicKey(public_key).format(compressed=True)
    ephemeral = PrivateKey()
    ephemeral_public = ephemeral.public_key.format(compressed=True)
    key = _kdf(ephemeral.ecdh(recipient), ephemeral_public, recipient, info)
    nonce = os.urandom(NONCE_BYTES)
    return ephemeral_public + nonce + AESGCM(key).encrypt(nonce, plaintext, info + associated)


def decrypt_with(private_key: bytes, blob: bytes, info: bytes, associated: bytes) -> bytes:
    """What `encrypt_to` encrypted to this key; UnsealError otherwise."""
    header = PUBLIC_KEY_BYTES + NONCE_BYTES
    if len(blob) < header + 16:
        raise UnsealError("too short to be an encrypted share")
    ephemeral_public, nonce, sealed = blob[:PUBLIC_KEY_BYTES], blob[PUBLIC_KEY_BYTES:header], blob[header:]
    me = PrivateKey(private_key)
    try:
        key = _kdf(me.ecdh(ephemeral_public), ephemeral_public, me.public_key.format(compressed=True), info)
        return AESGCM(key).decrypt(nonce, sealed, info + associated)
    except (InvalidTag, ValueError):
        raise UnsealError("it was not encrypted to this key for this purpose") from None


# -- issuing and opening ------------------------------------------------------------------


def _share_context(member: Address, chain_id: int, fingerprint: bytes) -> bytes:
    return bytes(member) + chain_id.to_bytes(32, "big") + fingerprint


def issue_recovery_set(
    secrets: LedgerSecrets, policy: RecoveryPolicy, chain_id: int, block_number: int
) -> RecoverySet:
    """A new recovery key wraps `secrets`; its k-of-n shares go to the policy's holders."""
    policy = replace(policy, secret_version=secrets.current_version)
    key = AESGCM.generate_key(bit_length=256)
    holders = sorted(policy.holders.items())
    k, n = policy.threshold, len(holders)
    low = Shamir.split(k, n, key[:HALF_BYTES])
    high = Shamir.split(k, n, key[HALF_BYTES:])
    fingerprint = policy.fingerprint(chain_id)
    shares: dict[Address, tuple[bytes, bytes]] = {}
    for (member, public_key), (number, first), (_, second) in zip(holders, low, high, strict=True):
        plain = bytes([number]) + first + second
        context = _share_context(member, chain_id, fingerprint)
        shares[member] = (public_key, encrypt_to(public_key, plain, SHARE_INFO, context))
    nonce = os.urandom(NONCE_BYTES)
    wrapped = nonce + AESGCM(key).encrypt(nonce, secrets.to_bytes(), WRAP_INFO + fingerprint)
    return RecoverySet(chain_id, block_number, k, secrets.current_version, fingerprint, wrapped, shares)


def open_share(recovery_set: RecoverySet, member: Address, private_key: bytes) -> bytes:
    """The member's share in clear (what it submits), opened with its account key."""
    entry = recovery_set.shares.get(member)
    if entry is None:
        raise UnsealError(f"0x{member.hex()} holds no share of this recovery set")
    context = _share_context(member, recovery_set.chain_id, recovery_set.fingerprint)
    share = decrypt_with(private_key, entry[1], SHARE_INFO, context)
    if len(share) != SHARE_BYTES:
        raise UnsealError("not a recovery share")
    return share


def combine_shares(shares: Sequence[bytes]) -> bytes:
    """The key `shares` interpolate to: the recovery key if at least k genuine shares of one
    set; some unrelated key otherwise (Shamir tells nothing with fewer)."""
    if not shares or any(len(share) != SHARE_BYTES for share in shares):
        raise ValueError(f"shares are {SHARE_BYTES} bytes each")
    if len({share[0] for share in shares}) != len(shares):
        raise ValueError("two shares carry the same number")
    low = Shamir.combine([(share[0], share[1 : 1 + HALF_BYTES]) for share in shares])
    high = Shamir.combine([(share[0], share[1 + HALF_BYTES :]) for share in shares])
    return bytes(low) + bytes(high)


def unwrap_ledger_secrets(recovery_set: RecoverySet, key: bytes) -> LedgerSecrets:
    """The ledger secrets the set wraps, with its recovery key; UnsealError for another key
    (too few or wrong shares) or an altered set."""
    nonce, sealed = recovery_set.wrapped[:NONCE_BYTES], recovery_set.wrapped[NONCE_BYTES:]
    try:
        raw = AESGCM(key).decrypt(nonce, sealed, WRAP_INFO + recovery_set.fingerprint)
    except InvalidTag:
        raise UnsealError(
            "the shares do not restore this recovery set's key: too few, or one is not a genuine "
            "share of the newest set"
        ) from None
    if not recovery_set.is_intact():
        raise UnsealError("the recovery set's threshold or members were altered")
    return LedgerSecrets.from_bytes(raw)


# -- submissions to a recovering enclave --------------------------------------------------


def submission_digest(encrypted_share: bytes, chain_id: int) -> bytes:
    """What a member signs (secp256k1, 65 bytes r ‖ s ‖ v) to submit `encrypted_share`."""
    return keccak(SUBMISSION_INFO + chain_id.to_bytes(32, "big") + encrypted_share)


def seal_submission(
    share: bytes, node_public_key: bytes, chain_id: int, member_key: bytes
) -> tuple[bytes, bytes]:
    """A member's share for the recovering enclave whose node key is `node_public_key`,
    and the member's signature over it: `(encrypted share, signature)`."""
    encrypted = encrypt_to(node_public_key, share, SUBMISSION_INFO, chain_id.to_bytes(32, "big"))
    signature = keys.PrivateKey(member_key).sign_msg_hash(submission_digest(encrypted, chain_id))
    return encrypted, signature.to_bytes()


def open_submission(
    node_key: bytes, encrypted: bytes, signature: bytes, chain_id: int
) -> tuple[Address, bytes]:
    """Who signed a submission and its share, opened with the enclave's node key;
    UnsealError for a bad signature or a share encrypted to another enclave."""
    try:
        signer = recover_signer(submission_digest(encrypted, chain_id), signature)
    except InvalidSignature:
        raise UnsealError(
            "the signature does not verify: sign the submission with the member's key"
        ) from None
    share = decrypt_with(node_key, encrypted, SUBMISSION_INFO, chain_id.to_bytes(32, "big"))
    if len(share) != SHARE_BYTES:
        raise UnsealError("not a recovery share")
    return signer, share
