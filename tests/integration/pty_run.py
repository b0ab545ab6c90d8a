#!/usr/bin/env python3
"""pty_run.py -- runs a command on a pseudo-terminal of COLS x ROWS and
records what it wrote, for tests of the tty display.

Usage: pty_run.py RAW_OUT SCREEN_OUT COLS ROWS -- CMD [ARGS...]

RAW_OUT gets the exact bytes. SCREEN_OUT gets the text a terminal would
show at the end (scrollback included), from a minimal emulator of what
the display uses: CR, LF, CSI n A (cursor up), CSI J / CSI K (erase), SGR
(ignored). Exits with the command's exit status."""
import fcntl
import os
import re
import struct
import subprocess
import sys
import termios


def emulate(data):
    lines = [""]
    row = col = 0
    text = data.decode("utf-8", "replace")
    i = 0
    csi = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")
    while i < len(text):
        c = text[i]
        if c == "\x1b":
            m = csi.match(text, i)
            if m:
                arg, cmd = m.group(1), m.group(2)
                n = int(arg) if arg.isdigit() else 0
                if cmd == "A":
                    row = max(0, row - (n or 1))
                elif cmd == "J":
                    lines[row] = lines[row][:col]
                    del lines[row + 1:]
                elif cmd == "K":
                    lines[row] = lines[row][:col]
                i = m.end()
                continue
            i += 1
            continue
        if c == "\r":
            col = 0
        elif c == "\n":
            row += 1
            col = 0
            while len(lines) <= row:
                lines.append("")
        else:
            line = lines[row].ljust(col)
            lines[row] = line[:col] + c + line[col + 1:]
            col += 1
        i += 1
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def main():
    raw_out, screen_out, cols, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    cmd = sys.argv[sys.argv.index("--") + 1:]
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR  # keep "\n" as the program wrote it
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            b = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the pty
            break
        if not b:
            break
        chunks.append(b)
    rc = proc.wait()
    data = b"".join(chunks)
    with open(raw_out, "wb") as f:
        f.write(data)
    with open(screen_out, "w") as f:
        f.write(emulate(data))
    sys.exit(rc)


if __name__ == "__main__":
    main()
