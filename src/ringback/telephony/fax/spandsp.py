"""A typed ctypes binding to the parts of libspandsp 0.0.6 (Debian's ``libspandsp2``) that the
fax engine uses: the audio fax front end (``fax_*``: T.30 over V.21/V.27ter/V.29/V.17 modems),
the T.38 terminal (``t38_terminal_*``, ``t38_core_*``: T.30 over T.38 IFP packets) and the T.30
engine's settings and results (``t30_*``).

The library is loaded at run time by its soname, ``libspandsp.so.2``; no build step, no
headers. Signatures follow spandsp 0.0.6's headers (``spandsp/fax.h``, ``t30.h``,
``t30_api.h``), which differ from spandsp 1.99/3.0 in places: ``t30_stats_t`` has no
``pages_in_file`` successors, ``t30_set_ecm_capability`` takes an ``int``, and handler types
are function types, not pointers (the same at the ABI level).

:func:`load` returns the loaded :class:`Spandsp` (once per process) or raises
:class:`FaxUnavailable` naming the Debian package to install.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

SONAME = "libspandsp.so.2"
INSTALL_HINT = "libspandsp is not installed: apt-get install libspandsp2"

# T30_SUPPORT_* modems (t30.h)
T30_SUPPORT_V27TER = 0x01
T30_SUPPORT_V29 = 0x02
T30_SUPPORT_V17 = 0x04
ALL_MODEMS = T30_SUPPORT_V27TER | T30_SUPPORT_V29 | T30_SUPPORT_V17

# t30_stats_t is 17 ints in 0.0.6; a spare tail keeps a layout mismatch from writing past it
_STATS_SPARE_INTS = 32


class FaxUnavailable(RuntimeError):
    """libspandsp cannot be loaded (not installed, or not the expected library)."""


class T30Stats(ctypes.Structure):
    """``t30_stats_t`` of spandsp 0.0.6."""

    _fields_ = [
        ("bit_rate", ctypes.c_int),
        ("error_correcting_mode", ctypes.c_int),
        ("pages_tx", ctypes.c_int),
        ("pages_rx", ctypes.c_int),
        ("pages_in_file", ctypes.c_int),
        ("x_resolution", ctypes.c_int),  # pixels per metre
        ("y_resolution", ctypes.c_int),
        ("width", ctypes.c_int),
        ("length", ctypes.c_int),
        ("image_size", ctypes.c_int),
        ("encoding", ctypes.c_int),
        ("bad_rows", ctypes.c_int),
        ("longest_bad_row_run", ctypes.c_int),
        ("error_correcting_mode_retries", ctypes.c_int),
        ("current_status", ctypes.c_int),
        ("rtp_events", ctypes.c_int),
        ("rtn_events", ctypes.c_int),
        ("_spare", ctypes.c_int * _STATS_SPARE_INTS),
    ]


#: void (*t30_phase_e_handler_t)(t30_state_t *s, void *user_data, int completion_code)
PHASE_E_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)

#: int (*t38_tx_packet_handler_t)(t38_core_state_t *s, void *user_data, const uint8_t *buf,
#: int len, int count)
T38_TX_PACKET_HANDLER = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint8),
    ctypes.c_int,
    ctypes.c_int,
)

_P = ctypes.c_void_p  # fax_state_t *, t30_state_t *, t38_*_state_t * (opaque)
_INT16_P = ctypes.POINTER(ctypes.c_int16)

# name: (restype, argtypes), as declared in spandsp 0.0.6's headers
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    # fax.h
    "fax_init": (_P, [_P, ctypes.c_int]),
    "fax_free": (ctypes.c_int, [_P]),
    "fax_rx": (ctypes.c_int, [_P, _INT16_P, ctypes.c_int]),
    "fax_rx_fillin": (ctypes.c_int, [_P, ctypes.c_int]),
    "fax_tx": (ctypes.c_int, [_P, _INT16_P, ctypes.c_int]),
    "fax_set_transmit_on_idle": (None, [_P, ctypes.c_int]),
    "fax_get_t30_state": (_P, [_P]),
    # t30.h / t30_api.h
    "t30_set_tx_file": (None, [_P, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]),
    "t30_set_rx_file": (None, [_P, ctypes.c_char_p, ctypes.c_int]),
    "t30_set_phase_e_handler": (None, [_P, PHASE_E_HANDLER, ctypes.c_void_p]),
    "t30_get_transfer_statistics": (None, [_P, ctypes.POINTER(T30Stats)]),
    "t30_set_ecm_capability": (ctypes.c_int, [_P, ctypes.c_int]),
    "t30_set_supported_modems": (ctypes.c_int, [_P, ctypes.c_int]),
    "t30_completion_code_to_str": (ctypes.c_char_p, [ctypes.c_int]),
    "t30_set_tx_ident": (ctypes.c_int, [_P, ctypes.c_char_p]),
    "t30_get_tx_ident": (ctypes.c_char_p, [_P]),
    "t30_get_rx_ident": (ctypes.c_char_p, [_P]),
    "t30_set_tx_page_header_info": (ctypes.c_int, [_P, ctypes.c_char_p]),
    "t30_terminate": (None, [_P]),
    # t38_terminal.h / t38_core.h
    "t38_terminal_init": (_P, [_P, ctypes.c_int, T38_TX_PACKET_HANDLER, ctypes.c_void_p]),
    "t38_terminal_free": (ctypes.c_int, [_P]),
    "t38_terminal_send_timeout": (ctypes.c_int, [_P, ctypes.c_int]),
    "t38_terminal_set_config": (None, [_P, ctypes.c_int]),
    "t38_terminal_get_t30_state": (_P, [_P]),
    "t38_terminal_get_t38_core_state": (_P, [_P]),
    "t38_core_rx_ifp_packet": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint16]),
    "t38_set_t38_version": (None, [_P, ctypes.c_int]),
}


class Spandsp:
    """The loaded library with every function used declared (``argtypes``/``restype``)."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        for name, (restype, argtypes) in _SIGNATURES.items():
            try:
                fn = getattr(lib, name)
            except AttributeError:
                raise FaxUnavailable(
                    f"{SONAME} has no {name}: not spandsp 0.0.6 ({INSTALL_HINT})"
                ) from None
            fn.restype = restype
            fn.argtypes = argtypes

    # fax.h ---------------------------------------------------------------------------------

    def fax_init(self, calling_party: bool) -> int:
        state: int | None = self.lib.fax_init(None, int(calling_party))
        if not state:
            raise MemoryError("fax_init failed")
        return state

    def fax_free(self, fax: int) -> None:
        self.lib.fax_free(fax)

    def fax_rx(self, fax: int, amp: ctypes.Array[ctypes.c_int16], length: int) -> int:
        return int(self.lib.fax_rx(fax, amp, length))

    def fax_rx_fillin(self, fax: int, length: int) -> int:
        return int(self.lib.fax_rx_fillin(fax, length))

    def fax_tx(self, fax: int, amp: ctypes.Array[ctypes.c_int16], max_len: int) -> int:
        return int(self.lib.fax_tx(fax, amp, max_len))

    def fax_set_transmit_on_idle(self, fax: int, on: bool) -> None:
        self.lib.fax_set_transmit_on_idle(fax, int(on))

    def fax_get_t30_state(self, fax: int) -> int:
        return int(self.lib.fax_get_t30_state(fax))

    # t30 -----------------------------------------------------------------------------------

    def t30_set_tx_file(self, t30: int, path: str, start: int = -1, stop: int = -1) -> None:
        self.lib.t30_set_tx_file(t30, path.encode(), start, stop)

    def t30_set_rx_file(self, t30: int, path: str, stop_page: int = -1) -> None:
        self.lib.t30_set_rx_file(t30, path.encode(), stop_page)

    def t30_set_phase_e_handler(self, t30: int, handler: Any) -> None:
        """``handler`` is a :data:`PHASE_E_HANDLER` object: the caller keeps it alive."""
        self.lib.t30_set_phase_e_handler(t30, handler, None)

    def t30_terminate(self, t30: int) -> None:
        """The call ended: phase E now (OK if only the final DCN was still going out)."""
        self.lib.t30_terminate(t30)

    def t30_get_transfer_statistics(self, t30: int) -> T30Stats:
        stats = T30Stats()
        self.lib.t30_get_transfer_statistics(t30, ctypes.byref(stats))
        return stats

    def t30_set_ecm_capability(self, t30: int, enabled: bool) -> None:
        self.lib.t30_set_ecm_capability(t30, int(enabled))

    def t30_set_supported_modems(self, t30: int, modems: int) -> None:
        self.lib.t30_set_supported_modems(t30, modems)

    def t30_completion_code_to_str(self, code: int) -> str:
        text: bytes | None = self.lib.t30_completion_code_to_str(code)
        return text.decode("ascii", "replace") if text else f"unknown code {code}"

    def t30_set_tx_ident(self, t30: int, ident: str) -> None:
        self.lib.t30_set_tx_ident(t30, ident.encode("ascii", "replace"))

    def t30_get_tx_ident(self, t30: int) -> str:
        return _text(self.lib.t30_get_tx_ident(t30))

    def t30_get_rx_ident(self, t30: int) -> str:
        return _text(self.lib.t30_get_rx_ident(t30))

    def t30_set_tx_page_header_info(self, t30: int, info: str) -> None:
        self.lib.t30_set_tx_page_header_info(t30, info.encode("ascii", "replace"))

    # t38 ----------------------------------------------------------------------------------

    def t38_terminal_init(self, calling_party: bool, handler: Any) -> int:
        """``handler`` is a :data:`T38_TX_PACKET_HANDLER` object: the caller keeps it alive."""
        state: int | None = self.lib.t38_terminal_init(None, int(calling_party), handler, None)
        if not state:
            raise MemoryError("t38_terminal_init failed")
        return state

    def t38_terminal_free(self, t38: int) -> None:
        self.lib.t38_terminal_free(t38)

    def t38_terminal_send_timeout(self, t38: int, samples: int) -> bool:
        return bool(self.lib.t38_terminal_send_timeout(t38, samples))

    def t38_terminal_set_config(self, t38: int, config: int) -> None:
        self.lib.t38_terminal_set_config(t38, config)

    def t38_terminal_get_t30_state(self, t38: int) -> int:
        return int(self.lib.t38_terminal_get_t30_state(t38))

    def t38_terminal_get_t38_core_state(self, t38: int) -> int:
        return int(self.lib.t38_terminal_get_t38_core_state(t38))

    def t38_core_rx_ifp_packet(self, core: int, packet: bytes, seq_no: int) -> int:
        return int(self.lib.t38_core_rx_ifp_packet(core, packet, len(packet), seq_no & 0xFFFF))

    def t38_set_t38_version(self, core: int, version: int) -> None:
        self.lib.t38_set_t38_version(core, version)


def _text(value: bytes | None) -> str:
    return value.decode("ascii", "replace").strip() if value else ""


_loaded: Spandsp | None = None
_lock = threading.Lock()


def load() -> Spandsp:
    """The process's :class:`Spandsp`; :class:`FaxUnavailable` when it cannot be loaded."""
    global _loaded
    with _lock:
        if _loaded is None:
            try:
                lib = ctypes.CDLL(SONAME)
            except OSError as exc:
                raise FaxUnavailable(f"{INSTALL_HINT} ({exc})") from None
            _loaded = Spandsp(lib)
        return _loaded


def available() -> bool:
    """Whether libspandsp can be loaded here."""
    try:
        load()
    except FaxUnavailable:
        return False
    return True
