"""`/auth/...`: Sign-In with Ethereum (EIP-4361), for readers of confidential data.

- `GET /auth/nonce`: `{"nonce": …}`, a fresh nonce to put in the message; each signs in
  once, within 5 minutes.
- `POST /auth/login` with `{"message": …, "signature": "0x…"}`: the EIP-4361 message and
  its EIP-191 signature (`personal_sign`); answered `{"token", "address", "expiresAt"}`.
  A refused login answers 401 with `{"detail": …}` saying why and what to do.
- `POST /auth/logout` with `Authorization: Bearer <token>`: sign out everywhere; every token
  issued so far to that address is refused from now on (`{"address", "signedOutAt"}`).

The message's domain must be the host the request is sent to, as its `Host` header says
(`127.0.0.1:8545`, `node.example.com`): behind a reverse proxy, the proxy must pass the
client's `Host` on (nginx: `proxy_set_header Host $host;`). The enclave checks everything
and issues the token (`enclave.auth`); this router only carries messages. The token then
goes with JSON-RPC requests as `Authorization: Bearer <token>` or in the URL, `/rpc/<token>`.
"""

from __future__ import annotations

from typing import Annotated

from eth_utils import to_checksum_address
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from enclave.auth import MAX_MESSAGE_CHARS
from evm_runtime.exceptions import Unauthenticated

SIGNATURE = r"^0x[0-9a-fA-F]{130}$"
NO_STORE = {"Cache-Control": "no-store"}
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="conclave"'}


class Nonce(BaseModel):
    nonce: str


class Login(BaseModel):
    message: Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE_CHARS)]
    """The EIP-4361 message, as signed."""
    signature: Annotated[str, Field(pattern=SIGNATURE)]
    """The 65-byte EIP-191 signature (r ‖ s ‖ v), in hex."""


class Session(BaseModel):
    token: str
    """The bearer token: `Authorization: Bearer <token>`, or the URL `/rpc/<token>`."""
    address: str
    """The address signed in, checksummed."""
    expiresAt: int
    """Unix time after which the token is refused."""


class SignedOut(BaseModel):
    address: str
    """The address signed out, checksummed."""
    signedOutAt: float
    """Unix time: tokens issued until then are refused."""


class Refusal(BaseModel):
    detail: str


REFUSED = {401: {"model": Refusal, "description": "the login is refused: the detail says why"}}

router = APIRouter(prefix="/auth", tags=["auth"])


def request_domain(request: Request) -> str:
    """The domain a sign-in message must name: the request's Host header."""
    return request.headers.get("host") or request.url.netloc


@router.get("/nonce")
async def nonce(request: Request, response: Response) -> Nonce:
    """A fresh nonce for an EIP-4361 message: valid for one login, within 5 minutes."""
    response.headers.update(NO_STORE)
    return Nonce(nonce=request.app.state.node.enclave.auth_challenge())


@router.post("/login", responses=REFUSED)
async def login(body: Login, request: Request, response: Response) -> Session:
    """Trade a signed EIP-4361 message for a login token bound to its signer."""
    try:
        session = request.app.state.node.enclave.auth_login(
            body.message, bytes.fromhex(body.signature[2:]), request_domain(request)
        )
    except Unauthenticated as refused:
        raise HTTPException(status_code=401, detail=str(refused), headers=WWW_AUTHENTICATE) from None
    response.headers.update(NO_STORE)
    return Session(
        token=session.token, address=to_checksum_address(session.address), expiresAt=session.expires_at
    )


@router.post("/logout", responses=REFUSED)
async def logout(request: Request, response: Response) -> SignedOut:
    """Sign out everywhere: every token issued so far to the address the bearer token names
    is refused from now on (a stolen token with it)."""
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            status_code=401,
            detail='send the token to sign out with as "Authorization: Bearer <token>"',
            headers=WWW_AUTHENTICATE,
        )
    try:
        address, at = request.app.state.node.enclave.auth_logout(token.strip())
    except Unauthenticated as refused:
        raise HTTPException(status_code=401, detail=str(refused), headers=WWW_AUTHENTICATE) from None
    response.headers.update(NO_STORE)
    return SignedOut(address=to_checksum_address(bytes(address)), signedOutAt=at)
