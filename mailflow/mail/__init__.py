"""Email as data: parse raw bytes, who sent it (RFC 8601), compose replies, mailbox OAuth2."""
