"""The errors lrenum reports as one line, each class with its own exit code.

The command line prints ``lrenum: error: <message>`` and exits with the class's ``exit_code``;
library callers catch the class they care about. Codes:

* 2 :class:`InputError`: bad input (a malformed network, domain, option or file);
* 3 :class:`WriteError`: writing the output failed (a full disk, an I/O error, a vanished
  directory); what was committed before the fault is kept and ``--resume`` finishes the file;
* 4 :class:`WorkerError`: a worker or the device failed (a Ray task that failed for good, the
  device out of memory); committed output is kept as for 3.
"""

from __future__ import annotations


class LrenumError(Exception):
    """An error with a one-line message for the user and an exit code for the command line."""

    exit_code = 1


class InputError(LrenumError, ValueError):
    """Bad user input: a malformed network, domain or file. The message is shown as is."""

    exit_code = 2


class WriteError(LrenumError):
    """Writing the output failed. The message names the file, the cause and what to do."""

    exit_code = 3


class WorkerError(LrenumError):
    """A worker task or the device failed in a way a retry did not mend."""

    exit_code = 4


class DeviceOutOfMemory(WorkerError):
    """The accelerator (or the host, for host arrays) ran out of memory."""
