"""The sip dialer backend: an asyncio SIP user agent on sipmessage, media on aiortp."""
