"""One blueprint per audience: collect (public), webhooks (HMAC), admin (API + pages), assets."""
