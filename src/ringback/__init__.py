"""ringback: an outbound-call scheduler for telephony platforms."""

__version__ = "0.1.0"
