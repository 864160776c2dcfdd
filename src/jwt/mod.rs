//! JSON Web Tokens: signing keys, JWKS, and the one place where tokens are validated.
