"""Replaces this Python process with the bundled binary, so exit codes, signals, stdin and the terminal are the
binary's own, as if it had been started directly."""
import errno
import os
import sys

from parsl_export import binary_path


def main():
    binary = binary_path()
    try:
        os.execv(binary, [binary, *sys.argv[1:]])
    except OSError as error:
        # The shell's codes for a command that cannot be run (126) or found (127).
        sys.stderr.write(f"parsl-export: cannot run {binary}: {error.strerror}\n")
        sys.exit(127 if error.errno == errno.ENOENT else 126)


if __name__ == "__main__":
    main()
