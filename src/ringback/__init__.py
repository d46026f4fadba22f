"""ringback: an outbound-call scheduler for telephony platforms."""

from ringback import structlog_import

__version__ = "0.1.0"

structlog_import.install()  # structlog without rich (see the module)
