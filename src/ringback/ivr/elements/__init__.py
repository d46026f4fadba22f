"""The IVR element handlers, in groups; :mod:`ringback.ivr.interpret` dispatches to them."""
