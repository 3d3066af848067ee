"""The auth service: who a user is, how they prove it, and the keys that vouch for them."""
